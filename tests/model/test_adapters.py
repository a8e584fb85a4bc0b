"""LoRA / QLoRA through peft and gradient checkpointing, on tiny models, offline, CPU."""
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_models import ARCHS, tiny_config

from harness.config import RunConfig
from harness.data import prepare as data_mod
from harness.errors import UserError
from harness.finetune import cell, fit
from harness.finetune.objective import Objective
from harness.model import adapters, loading, pooled_layer
from harness.record import predictions
from harness.record.variants import variant_name
from harness.registry.load import load_tasks, local_model

CPU = torch.device("cpu")


def _bert(dropout=0.1):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        max_position_embeddings=64, num_labels=3, pad_token_id=0, hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout))


def _llama():
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    return LlamaForSequenceClassification(LlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, num_labels=3, pad_token_id=3))


BUILD = {"decoder": _llama, "encoder": _bert}


def _batch(pad_id):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 50, (5, 9), generator=g)
    mask = torch.ones_like(ids)
    for row, n in enumerate([9, 4, 7, 2, 6]):
        ids[row, n:], mask[row, n:] = pad_id, 0
    return {"input_ids": ids, "attention_mask": mask}, torch.tensor([0, 1, 2, 1, 0])


def _loss_and_grads(model, batch, labels, seed=7):
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout masks for the runs compared
    loss = F.cross_entropy(model(**batch).logits, labels)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _toy_data(toy_env, folder, limit=32):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    spec = local_model(folder)
    data = data_mod.prepare(load_tasks()["toy"], tok, spec.family, max_positions=512, mirror=str(toy_env["mirror"]),
                            limit=limit)
    return spec, tok, data


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_lora_trains_only_the_adapters_and_the_head(toy_env, tiny_decoder, tiny_encoder, family):
    folder = tiny_decoder if family == "decoder" else tiny_encoder
    spec, tok, data = _toy_data(toy_env, folder)
    cfg = RunConfig(epochs=1, learning_rate=1e-2, peft="lora", lora_r=4)
    torch.manual_seed(0)
    base = loading.load_model(spec, str(folder), None, 2, ["NEG", "POS"], tok, cfg, False)
    model, info = adapters.prepare(base, cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = fit.train_fit(model=model, train=data.splits["train"], validation=None, test=data.splits["test"],
                           objective=Objective("classification", ("accuracy", "macro_f1")),
                           cfg=cfg, seed=0, pad_id=tok.pad_token_id, device=CPU, label="t",
                           train_set="train", validation_source=None, checkpoint_dir=None, log=lambda m: None)
    assert result.embedding_rows is None  # frozen embeddings: no rows of their own to train
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed == trainable  # everything trainable moved, nothing else did
    head = {"decoder": "score", "encoder": "classifier"}[family]
    assert info.lora.trained_in_full == [head]
    head_keys = {k for k in before if f"{head}.modules_to_save." in k}
    assert head_keys and {k for k in changed if "lora_" not in k} == head_keys  # the head, trained in full
    adapted = {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in changed if "lora_" in k}
    expected = {"decoder": {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
                "encoder": {"query", "key", "value", "dense"}}[family]
    assert adapted == expected == set(info.lora.targets)
    assert info.trainable_parameters == sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
    assert info.method == "lora" and info.trainable_parameters < info.total_parameters / 2


@pytest.mark.slow  # end to end: whole runs through run_cell
def test_lora_checkpoints_hold_adapters_and_head_and_reload_to_the_same_predictions(toy_env, tiny_decoder, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file

    task, spec = load_tasks()["toy"], local_model(tiny_decoder)
    cfg = RunConfig(epochs=2, learning_rate=3e-3, peft="lora", lora_r=4, save_every_epoch=True)
    rec = cell.run_cell(task, spec, cfg, seed=1, limit=32, mirror=str(toy_env["mirror"]),
                           checkpoint_dir=tmp_path / "ck", log=lambda m: None)
    folder = tmp_path / "ck" / "train-epoch2"
    saved = load_file(folder / "adapter_model.safetensors")
    assert saved and all("lora_" in k or ".score." in k for k in saved)  # adapters and head, no base weights
    assert sum(v.numel() for v in saved.values()) == rec.adaptation.trainable_parameters

    _, tok, data = _toy_data(toy_env, tiny_decoder)
    torch.manual_seed(123)  # another head initialisation: the checkpoint's head must replace it
    base = loading.load_model(spec, str(tiny_decoder), None, 2, ["NEG", "POS"], tok, RunConfig(), False)
    model = PeftModel.from_pretrained(base, folder)
    objective = Objective("classification", ("accuracy",))
    metrics, preds, _, _ = fit.evaluate(model, data.splits["test"], objective, cfg, tok.pad_token_id, CPU)
    epoch2 = rec.fits[0].epochs[1]
    assert predictions.encode_ids(preds) == epoch2.test_predictions
    assert metrics.loss == pytest.approx(epoch2.test.loss, rel=1e-5)


def test_lora_settings_name_the_variant_and_are_recorded(toy_env, tiny_encoder):
    full = variant_name(RunConfig().recipe_overrides(), None)
    lora = variant_name(RunConfig(peft="lora").recipe_overrides(), None)
    lora8 = variant_name(RunConfig(peft="lora", lora_r=8).recipe_overrides(), None)
    qlora = variant_name(RunConfig(peft="qlora").recipe_overrides(), None)
    assert len({full, lora, lora8, qlora}) == 4 and full == "default"
    # exact knobs share the variant: checkpointing, sharding, the emissions country
    assert variant_name(RunConfig(peft="lora", gradient_checkpointing=True, sharding="fsdp",
                                  emissions_country="BRA").recipe_overrides(), None) == lora
    cfg = RunConfig(epochs=1, peft="lora", lora_r=2)
    rec = cell.run_cell(load_tasks()["toy"], local_model(tiny_encoder), cfg, seed=1, limit=16,
                           mirror=str(toy_env["mirror"]), log=lambda m: None)
    assert rec.variant == variant_name(cfg.recipe_overrides(), 16) == "epochs=1_lora_r=2_peft=lora_limit16"
    lora = rec.adaptation.lora
    assert (lora.r, lora.alpha, lora.dropout, lora.trained_in_full, lora.quantization) == (
        2, 32, 0.05, ["classifier"], None)
    assert 0 < rec.adaptation.trainable_parameters < rec.adaptation.total_parameters
    assert rec.adaptation.base_parameters == rec.model.parameters


@pytest.mark.parametrize("settings, message", [
    (dict(lora_r=8), "lora_r given without --peft lora"),
    (dict(peft="dora"), "peft must be none, lora or qlora"),
    (dict(peft="lora", lora_r=0), "lora_r must be >= 1"),
    (dict(peft="lora", lora_dropout=1.0), "lora_dropout must be in"),
    (dict(peft="lora", lora_targets="q_proj;v_proj"), "lora_targets must be auto or module names"),
    (dict(sharding="zero3"), "sharding must be none or fsdp"),
    (dict(peft="qlora", sharding="fsdp"), "does not combine"),
    (dict(emissions_country="Brazil"), "3-letter ISO code"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(UserError, match=message):
        RunConfig(**settings)


def test_unknown_lora_target_is_refused_with_the_valid_names():
    with pytest.raises(UserError, match=r"no linear layer named qkv .*down_proj, gate_proj"):
        adapters.prepare(_llama(), RunConfig(peft="lora", lora_targets="q_proj,qkv"))
    model, info = adapters.prepare(_llama(), RunConfig(peft="lora", lora_targets="q_proj,v_proj"))
    assert info.lora.targets == ["q_proj", "v_proj"]
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters() if "lora_" in n} == \
        {"q_proj", "v_proj"}


def test_qlora_without_cuda_is_one_line_and_exit_2_before_any_loading(toy_env, tiny_decoder, monkeypatch, capsys):
    from harness.cli.commands import main

    loaded = []
    for name in ("load_tokenizer", "load_model"):
        monkeypatch.setattr(loading, name, lambda *a, _n=name, **k: loaded.append(_n))
    import transformers

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loaded.append("from_pretrained")))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loaded.append("tokenizer")))
    monkeypatch.setattr(data_mod, "prepare", lambda *a, **k: loaded.append("data"))
    # Where bitsandbytes is installed (the qlora extra), peft imports it as soon as any test imports peft: take it
    # out of sys.modules for this run (monkeypatch puts it back), so that an import by the run shows again.
    for name in [m for m in sys.modules if m.partition(".")[0] == "bitsandbytes"]:
        monkeypatch.delitem(sys.modules, name)
    rc = main(["run", "--task", "toy", "--model", str(tiny_decoder), "--mirror", str(toy_env["mirror"]),
               "--results", str(toy_env["results"]), "--peft", "qlora", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and loaded == [] and "bitsandbytes" not in sys.modules
    assert err.count("\n") == 1 and "--peft qlora needs a CUDA GPU" in err and "use --peft lora" in err
    assert not toy_env["results"].exists() or not list(toy_env["results"].rglob("*.json"))
    with pytest.raises(UserError, match="needs a CUDA GPU"):  # the routine refuses too (sweeps call it directly)
        cell.run_cell(load_tasks()["toy"], local_model(tiny_decoder), RunConfig(peft="qlora", device="cpu"),
                         seed=1, mirror=str(toy_env["mirror"]), log=lambda m: None)
    assert loaded == []


@pytest.mark.parametrize("pooled", [True, False], ids=["pooled", "full-last-layer"])
@pytest.mark.parametrize("peft", ["none", "lora"])
@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(family, peft, pooled):
    """With dropout on (BERT) the recomputed forward must draw the same masks; the adapters of checkpointed
    layers, whose inputs come from frozen weights, must still get their gradients."""
    batch, labels = _batch(pad_id=0 if family == "encoder" else 3)
    runs, recomputed = [], []
    for gc in (False, True):
        lora = {"lora_r": 4} if peft == "lora" else {}
        model, _ = adapters.prepare(BUILD[family](), RunConfig(peft=peft, gradient_checkpointing=gc, **lora))
        inner = adapters.transformers_model(model)
        if pooled:
            assert pooled_layer.install(inner)
        calls = []
        # a module inside the first layer (the layer's own hooks stay outside the checkpoint)
        inside = inner.model.layers[0].self_attn.q_proj if family == "decoder" else \
            inner.bert.encoder.layer[0].attention.self.query
        inside.register_forward_hook(lambda *a, calls=calls: calls.append(1))
        runs.append(_loss_and_grads(model, batch, labels))
        recomputed.append(len(calls))
    assert recomputed == [1, 2]  # checkpointing really ran the layer again in the backward pass
    (loss_a, grads_a), (loss_b, grads_b) = runs
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-6, atol=1e-7)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
    if peft == "lora":
        assert any("layers.0." in n or "layer.0." in n for n in grads_a)  # adapters of a checkpointed layer
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.slow  # end to end: whole runs through run_cell
def test_gradient_checkpointing_trains_the_same_run(toy_env, tiny_encoder):
    """A whole run (BERT with dropout, LoRA): the same losses and predictions, epoch by epoch."""
    task, spec = load_tasks()["toy"], local_model(tiny_encoder)
    kwargs = dict(seed=3, limit=32, mirror=str(toy_env["mirror"]), log=lambda m: None)
    settings = dict(epochs=2, peft="lora", learning_rate=3e-3, precision="fp32")  # the same to fp32's rounding
    plain = cell.run_cell(task, spec, RunConfig(**settings), **kwargs)
    gc = cell.run_cell(task, spec, RunConfig(**settings, gradient_checkpointing=True), **kwargs)
    assert gc.adaptation.gradient_checkpointing and not plain.adaptation.gradient_checkpointing
    for a, b in zip(plain.fits[0].epochs, gc.fits[0].epochs, strict=True):
        assert a.test_predictions == b.test_predictions
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-5)
        assert b.test.loss == pytest.approx(a.test.loss, rel=1e-5)


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_pooled_last_layer_is_exact_and_really_pools_under_lora(family):
    batch, labels = _batch(pad_id=0 if family == "encoder" else 3)
    results, query_rows = [], []
    for pooled in (False, True):
        model = BUILD[family]()
        model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
        model, _ = adapters.prepare(_no_dropout(model), RunConfig(peft="lora", lora_r=4, lora_dropout=0.0))
        inner = adapters.transformers_model(model)
        if pooled:
            assert pooled_layer.install(inner) and pooled_layer.is_installed(inner)
        last = inner.model.layers[-1].self_attn.q_proj if family == "decoder" else \
            inner.bert.encoder.layer[-1].attention.self.query
        assert type(last).__module__.startswith("peft")  # the adapter-wrapped projection
        rows = []
        last.register_forward_hook(lambda m, args, out, rows=rows: rows.append(args[0].shape[1]))
        model.eval()
        with torch.no_grad():
            logits = model(**batch).logits
        results.append((logits, *_loss_and_grads(model, batch, labels)))
        query_rows.append(rows[0])
    assert query_rows == [9, 1]  # the pooled layer computes the query of one row per text
    (la, loss_a, ga), (lb, loss_b, gb) = results
    torch.testing.assert_close(lb, la, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=1e-6)
    assert ga.keys() == gb.keys()
    for name in ga:
        torch.testing.assert_close(gb[name], ga[name], rtol=1e-4, atol=1e-6, msg=name)


def _no_dropout(model):
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def test_parameter_counts_skip_the_spare_head_copy():
    model, info = adapters.prepare(_llama(), RunConfig(peft="lora", lora_r=4))
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    head = _llama().score.weight.numel()
    assert info.trainable_parameters == lora + head
    assert info.total_parameters == info.base_parameters + lora
    assert np.isclose(sum(p.numel() for p in model.parameters()), info.total_parameters + head)


@pytest.mark.parametrize("arch", ARCHS)
def test_lora_on_every_architecture_trains_adapters_and_head_only(arch):
    """One step on each tiny architecture: every trainable tensor is an adapter or the head, and each gets a
    gradient; the frozen backbone gets none. Padding rows are masked, as in training."""
    from transformers import AutoModelForSequenceClassification

    config = tiny_config(arch, num_labels=3, **({"pad_token_id": 3} if arch in ("mistral", "qwen2", "qwen3") else {}))
    torch.manual_seed(0)
    model, info = adapters.prepare(AutoModelForSequenceClassification.from_config(config),
                                   RunConfig(peft="lora", lora_r=2, lora_dropout=0.0))
    assert info.lora.trained_in_full and info.lora.targets
    batch, labels = _batch(pad_id=model.config.pad_token_id)
    F.cross_entropy(model(**batch).logits, labels).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("modules_to_save" in n for n in trainable)
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
    assert info.trainable_parameters == sum(p.numel() for p in trainable.values())
