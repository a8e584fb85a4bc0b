"""The last layer computed only where the head reads: the same logits and gradients as the full layer."""
import copy

import pytest
import torch
from tiny_models import tiny_config

from harness.model import pooled_layer

POOLED = ["llama", "mistral", "qwen2", "qwen3", "bert", "roberta", "xlm-roberta", "modernbert"]


DECODERS = ["llama", "mistral", "qwen2", "qwen3"]


LABELS = torch.tensor([0, 1, 2, 1, 0])


def _model(arch, attn="sdpa", seed=0, **overrides):
    from transformers import AutoModelForSequenceClassification

    if arch in DECODERS:
        overrides.setdefault("pad_token_id", 3)  # as the routine sets it from the tokenizer
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(tiny_config(arch, num_labels=3, **overrides))
    model.config._attn_implementation = attn
    return model


def _pair(arch, attn="sdpa", **overrides):
    full = _model(arch, attn, **overrides)
    fast = copy.deepcopy(full)
    assert pooled_layer.install(fast), pooled_layer.why_not(fast)
    return full, fast


def _pad_id(model):
    return model.config.pad_token_id


def _batch(pad_id, with_types=False, padded=True, length=9):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 50, (5, length), generator=g)
    mask = torch.ones_like(ids)
    if padded:
        for row, n in enumerate([length, 4, length - 2, 1, 6]):
            ids[row, n:], mask[row, n:] = pad_id, 0
    batch = {"input_ids": ids, "attention_mask": mask}
    if with_types:
        batch["token_type_ids"] = (torch.arange(length) >= 3).long().expand(5, length) * mask
    return batch


def _grads(model, batch, **kwargs):
    model.train()  # no dropout in these configs, so training-mode outputs are deterministic
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(**batch, **kwargs).logits, LABELS).backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}


def _same_logits_and_grads(full, fast, batch):
    full.eval(), fast.eval()
    with torch.no_grad():
        a, b = full(**batch).logits, fast(**batch).logits
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    expected, got = _grads(full, batch), _grads(fast, batch)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("arch, attn", [(arch, "sdpa") for arch in POOLED] + [
    (arch, "eager") for arch in ("llama", "qwen3", "bert", "modernbert")])  # eager: additive float masks
def test_pooled_rows_give_the_full_layers_logits_and_gradients(arch, attn):
    """Right-padded and unpadded batches, grouped-query attention in the decoders; Mistral's and ModernBERT's
    4-token sliding windows cut into these 9-token rows."""
    full, fast = _pair(arch, attn)
    with_types = arch == "bert"
    _same_logits_and_grads(full, fast, _batch(_pad_id(full), with_types=with_types))
    _same_logits_and_grads(full, fast, _batch(_pad_id(full), with_types=with_types, padded=False))


def test_qwen2_sliding_window_layer():
    full, fast = _pair("qwen2", use_sliding_window=True, sliding_window=4, max_window_layers=1)
    assert full.config.layer_types == ["full_attention", "sliding_attention"]  # the pooled layer is the sliding one
    _same_logits_and_grads(full, fast, _batch(3))
    _same_logits_and_grads(full, fast, _batch(3, padded=False, length=12))


@pytest.mark.parametrize("arch", DECODERS)
def test_decoder_pad_id_inside_an_unmasked_row(arch):
    """With pad = EOS, a pad id can sit inside the attended text; the head reads the last non-pad token."""
    full, fast = _pair(arch)
    batch = _batch(3, padded=False)
    batch["input_ids"][1, 3] = batch["input_ids"][1, 7] = batch["input_ids"][1, 8] = 3  # read: position 6
    _same_logits_and_grads(full, fast, batch)


@pytest.mark.parametrize("arch", POOLED)
def test_only_the_read_rows_are_computed(arch):
    """The other rows of the last layer pass through unchanged, and the logits still equal the full model's:
    so the head reads exactly these rows (the first token; the last real token in decoders)."""
    full, fast = _pair(arch)
    fast.eval()
    batch = _batch(_pad_id(full))
    read = [8, 3, 6, 0, 5] if arch in DECODERS else [0] * 5
    seen = {}
    layer = fast.base_model.layers[-1] if hasattr(fast.base_model, "layers") else fast.base_model.encoder.layer[-1]
    layer.register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o))
    with torch.no_grad():
        fast(**batch)
    changed = (seen["out"] != seen["inp"]).any(-1)
    assert changed[torch.arange(5), read].all() and changed.sum() == 5


def test_install_is_idempotent_and_keeps_the_state_dict():
    full, fast = _pair("llama")
    assert pooled_layer.install(fast) and pooled_layer.is_installed(fast)
    assert list(fast.state_dict()) == list(full.state_dict())
    _same_logits_and_grads(full, fast, _batch(3))


@pytest.mark.parametrize("arch, overrides, attn, reason", [
    ("deberta-v2", {}, "sdpa", "relative positions"),  # Albertina 900m / 1b5
    ("deberta", {}, "eager", "relative positions"),  # Albertina 100m
    ("modernbert", {"classifier_pooling": "mean"}, "sdpa", "reads every position"),  # mmBERT's setting
    ("bert", {}, "flash_attention_2", "attention 'flash_attention_2'"),
    ("llama", {}, "flex_attention", "attention 'flex_attention'"),
    ("bert", {"is_decoder": True}, "sdpa", "is_decoder"),
])
def test_unsupported_models_keep_their_own_layer(arch, overrides, attn, reason):
    model = _model(arch, attn, **overrides)
    assert reason in pooled_layer.why_not(model)
    assert not pooled_layer.install(model) and not pooled_layer.is_installed(model)
    assert "forward" not in vars(model)


@pytest.mark.parametrize("arch", ["llama", "modernbert"])
@pytest.mark.parametrize("how", ["argument", "config"])
def test_output_hidden_states_gets_the_full_layer(arch, how):
    """Hidden states show every row, so a call that asks for them runs the full layer: all rows are exact."""
    full, fast = _pair(arch)
    full.eval(), fast.eval()
    kwargs = {"output_hidden_states": True} if how == "argument" else {}
    if how == "config":
        full.config.output_hidden_states = fast.config.output_hidden_states = True
    batch = _batch(_pad_id(full))
    with torch.no_grad():
        a, b = full(**batch, **kwargs), fast(**batch, **kwargs)
    assert len(a.hidden_states) == len(b.hidden_states) == 3
    for x, y in zip(a.hidden_states, b.hidden_states, strict=True):
        torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.logits, a.logits, rtol=1e-5, atol=1e-6)


def test_output_attentions_gets_the_full_layer():
    full, fast = _pair("bert", "eager")
    full.eval(), fast.eval()
    with torch.no_grad():
        a, b = full(**_batch(0), output_attentions=True), fast(**_batch(0), output_attentions=True)
    assert len(b.attentions) == len(a.attentions) == 2
    torch.testing.assert_close(b.attentions[-1], a.attentions[-1])


@pytest.mark.parametrize("arch", ["qwen3", "xlm-roberta"])
def test_inner_model_called_directly_gets_the_full_layer(arch):
    """No stale positions: after a classifier call, the inner model called on its own (another batch) is exact
    in every row, as no read positions were computed for that call."""
    full, fast = _pair(arch)
    full.eval(), fast.eval()
    pad = _pad_id(full)
    other = _batch(pad, length=7)
    with torch.no_grad():
        fast(**_batch(pad))
        a = full.base_model(**other).last_hidden_state
        b = fast.base_model(**other).last_hidden_state
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_the_record_says_what_ran():
    """model.last_layer: "pooled" only where every classifier call ran the read rows. An argument the layer
    does not know (here token_type_ids, which ModernBERT passes down to its layers) runs the full layer."""
    full, fast = _pair("modernbert")
    fast.eval()
    batch = _batch(0)
    assert pooled_layer.which_ran(full) == "full" and pooled_layer.which_ran(fast) == "full"  # nothing ran yet
    with torch.no_grad():
        fast(**batch)
        fast.base_model(**batch)  # a direct inner call is not a classifier call: not counted
        assert pooled_layer.which_ran(fast) == "pooled"
        fast(**batch, token_type_ids=torch.zeros_like(batch["input_ids"]))
    assert pooled_layer.which_ran(fast) == "mixed"


def test_inputs_embeds_gets_the_full_layer():
    full, fast = _pair("llama")
    full.eval(), fast.eval()
    embeds = full.get_input_embeddings()(_batch(3, padded=False)["input_ids"])
    with torch.no_grad():
        torch.testing.assert_close(fast(inputs_embeds=embeds).logits, full(inputs_embeds=embeds).logits)


def _enable_checkpointing(model):
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()


@pytest.mark.parametrize("arch", ["llama", "qwen3", "bert", "modernbert"])
def test_gradient_checkpointing_recomputes_with_the_positions_of_its_own_call(arch):
    """Under gradient checkpointing the pooled layer is recomputed in the backward pass: with the positions
    bound at its forward, even when another batch (other positions) ran in between."""
    full, fast = _pair(arch)
    _enable_checkpointing(fast)
    pad = _pad_id(full)
    batch, other = _batch(pad), _batch(pad, length=6)
    other["input_ids"] = other["input_ids"].flip(0)
    other["attention_mask"] = other["attention_mask"].flip(0)
    expected = _grads(full, batch)
    calls = []
    layer = fast.base_model.layers[-1] if hasattr(fast.base_model, "layers") else fast.base_model.encoder.layer[-1]
    first = next(m for m in layer.modules() if isinstance(m, torch.nn.Linear))
    first.register_forward_hook(lambda m, i, o: calls.append(i[0].shape))
    fast.train()
    fast.zero_grad()
    loss = torch.nn.functional.cross_entropy(fast(**batch).logits, LABELS)
    fast(**other)  # another call between this forward and its backward
    loss.backward()
    assert len(calls) == 3  # forward, the other batch's forward, and the recompute in the backward pass
    for name, p in fast.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_deepcopy_runs_its_own_weights():
    """The patched forwards are bound to their model: a copy made after install is an independent model."""
    full, fast = _pair("qwen2")
    copied = copy.deepcopy(fast)
    assert pooled_layer.is_installed(copied)
    with torch.no_grad():
        for model in (full, copied):
            model.model.layers[-1].mlp.down_proj.weight.mul_(3.0)
    _same_logits_and_grads(full, copied, _batch(3))
    fast.eval(), full.eval()
    with torch.no_grad():
        assert not torch.allclose(fast(**_batch(3)).logits, full(**_batch(3)).logits)


@pytest.mark.parametrize("order", ["install, then wrap", "wrap, then install"])
def test_lora_through_peft_stays_exact(order):
    """peft wraps the classifier (LoRA on the attention projections, the head trained in full): the shortcut
    works through the wrapper, with the adapters acting on the computed rows."""
    peft = pytest.importorskip("peft")

    def lora(model):
        config = peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.0,
                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False)
        torch.manual_seed(5)
        return peft.get_peft_model(model, config)

    full, fast = _model("llama"), _model("llama")
    full = lora(full)
    if order == "install, then wrap":
        assert pooled_layer.install(fast)
        fast = lora(fast)
    else:
        fast = lora(fast)
        assert pooled_layer.install(fast)
    assert pooled_layer.is_installed(fast) and not pooled_layer.is_installed(full)
    batch = _batch(3)
    full.eval(), fast.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(**batch).logits, full(**batch).logits, rtol=1e-5, atol=1e-6)
    expected, got = _grads(full, batch), _grads(fast, batch)
    trainable = [n for n, p in full.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trainable)
    for name in trainable:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_training_with_dropout_runs_and_learns():
    """With dropout on, results are random, so this checks the shortcut trains: the loss falls."""
    model = _model("bert", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    assert pooled_layer.install(model)
    batch = _batch(0, with_types=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(**batch).logits, LABELS)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("arch", ["llama", "qwen3", "bert", "modernbert"])
def test_under_bf16_autocast_as_on_a_gpu(arch):
    """The CUDA path runs under bf16 autocast: mixed dtypes must meet where the rows are put back."""
    full, fast = _pair(arch)
    full.eval(), fast.eval()
    batch = _batch(_pad_id(full))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = full(**batch).logits.float(), fast(**batch).logits.float()
    torch.testing.assert_close(b, a, rtol=0.05, atol=0.02)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast.train()
        fast(**batch).logits.float().sum().backward()
    assert all(p.grad is not None for p in fast.parameters())
