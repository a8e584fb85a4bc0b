"""The last-layer shortcut must give the model's own results: logits and gradients, both families."""
import copy

import pytest
import torch

from harness import pooled_layer


def _bert(attn="sdpa", dropout=0.0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=64, num_labels=3, pad_token_id=0,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return BertForSequenceClassification(config)


def _llama(attn="sdpa", kv_heads=4):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=64,
                         num_labels=3, pad_token_id=3)
    return LlamaForSequenceClassification(config)


def _pair(build, attn):
    full = build()
    full.config._attn_implementation = attn
    fast = copy.deepcopy(full)
    assert pooled_layer.install(fast, full.config.pad_token_id)
    return full, fast


def _batch(pad_id, with_types=False, padded=True):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 50, (5, 9), generator=g)
    mask = torch.ones_like(ids)
    if padded:
        for row, n in enumerate([9, 4, 7, 1, 6]):
            ids[row, n:], mask[row, n:] = pad_id, 0
    batch = {"input_ids": ids, "attention_mask": mask}
    if with_types:
        batch["token_type_ids"] = (torch.arange(9) >= 3).long().expand(5, 9) * mask
    return batch


def _same_logits_and_grads(full, fast, batch):
    labels = torch.tensor([0, 1, 2, 1, 0])
    full.eval(), fast.eval()
    with torch.no_grad():
        a, b = full(**batch).logits, fast(**batch).logits
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    full.train(), fast.train()  # dropout is 0 in these configs, so training-mode outputs are deterministic
    for model in (full, fast):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(**batch).logits, labels).backward()
    for (name, p), q in zip(full.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_bert_pairs_with_padding(attn):
    full, fast = _pair(_bert, attn)
    _same_logits_and_grads(full, fast, _batch(0, with_types=True))
    _same_logits_and_grads(full, fast, _batch(0, with_types=True, padded=False))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("kv_heads", [4, 2])  # 2: grouped-query attention
def test_llama_right_padded_and_unpadded(attn, kv_heads):
    full, fast = _pair(lambda: _llama(kv_heads=kv_heads), attn)
    _same_logits_and_grads(full, fast, _batch(3))
    _same_logits_and_grads(full, fast, _batch(3, padded=False))


def test_llama_pad_id_inside_an_unmasked_row():
    """With pad = EOS, a pad id can sit inside the attended text; the head reads the last non-pad token."""
    full, fast = _pair(_llama, "sdpa")
    batch = _batch(3, padded=False)
    batch["input_ids"][1, 3] = batch["input_ids"][1, 7] = batch["input_ids"][1, 8] = 3  # read: position 6
    _same_logits_and_grads(full, fast, batch)


@pytest.mark.parametrize("build, layers, read", [
    (_bert, lambda m: m.bert.encoder.layer, lambda batch: [0] * 5),
    (_llama, lambda m: m.model.layers, lambda batch: [8, 3, 6, 0, 5]),  # the last real token of _batch's rows
])
def test_the_shortcut_really_skips_the_other_rows(build, layers, read):
    """Only the rows the head reads are computed: the other rows of the last layer pass through unchanged."""
    full, fast = _pair(build, "sdpa")
    fast.eval()
    batch = _batch(full.config.pad_token_id)
    seen = {}
    layers(fast)[-1].register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o))
    with torch.no_grad():
        fast(**batch)
    rows = torch.arange(5)
    changed = (seen["out"] != seen["inp"]).any(-1)
    assert changed[rows, read(batch)].all()
    assert changed.sum() == 5


def test_install_is_idempotent_and_keeps_the_state_dict():
    full, fast = _pair(_llama, "sdpa")
    assert pooled_layer.install(fast, 3) and pooled_layer.is_installed(fast)
    assert list(fast.state_dict()) == list(full.state_dict())
    _same_logits_and_grads(full, fast, _batch(3))


def test_other_models_and_attention_kinds_are_left_alone():
    from transformers import RobertaConfig, RobertaForSequenceClassification

    roberta = RobertaForSequenceClassification(RobertaConfig(vocab_size=50, hidden_size=32, intermediate_size=64,
                                                             num_hidden_layers=1, num_attention_heads=4))
    assert not pooled_layer.install(roberta, 1) and not pooled_layer.is_installed(roberta)
    bert = _bert()
    bert.config._attn_implementation = "flash_attention_2"
    assert not pooled_layer.install(bert, 0) and not pooled_layer.is_installed(bert)


def test_training_with_dropout_runs_and_learns():
    """With dropout on, results are random, so this checks the shortcut trains: the loss falls."""
    model = _bert(dropout=0.1)
    assert pooled_layer.install(model, 0)
    batch, labels = _batch(0, with_types=True), torch.tensor([0, 1, 2, 1, 0])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(**batch).logits, labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("build", [_bert, _llama])
def test_under_bf16_autocast_as_on_a_gpu(build):
    """The CUDA path runs under bf16 autocast: mixed dtypes must meet where the rows are put back."""
    full, fast = _pair(build, "sdpa")
    full.eval(), fast.eval()
    batch = _batch(full.config.pad_token_id)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = full(**batch).logits.float(), fast(**batch).logits.float()
    torch.testing.assert_close(b, a, rtol=0.05, atol=0.02)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast.train()
        fast(**batch).logits.float().sum().backward()
    assert all(p.grad is not None for p in fast.parameters())
