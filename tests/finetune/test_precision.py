"""Precision: what auto means on CUDA and on CPUs with and without native bf16 (the processor's answer mocked both
ways), why, and a CPU run in bf16 that trains and records it."""
import json

import pytest
import torch

from harness import results
from harness.cli.commands import main
from harness.config import RunConfig
from harness.finetune import precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
NONE = {"avx512_f": True, "avx2": True, "avx512_bf16": False, "amx_bf16": False, "amx_tile": False}


def processor(monkeypatch, **features):
    """torch.cpu.get_capabilities answers as a CPU with these features (an AVX-512 CPU without bf16 otherwise)."""
    answer = {**NONE, **features}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: answer)


@pytest.mark.parametrize("features, found", [({"avx512_bf16": True}, "avx512_bf16"),
                                             ({"amx_bf16": True, "amx_tile": True}, "amx_bf16"),
                                             ({"avx512_bf16": True, "amx_bf16": True}, "avx512_bf16, amx_bf16")])
def test_auto_is_bf16_on_a_cpu_that_computes_it_natively(monkeypatch, features, found):
    processor(monkeypatch, **features)
    assert precision.precision_and_reason(RunConfig(), CPU) == (
        "bf16", f"auto: bf16 autocast, the CPU computes bf16 natively ({found})")
    with precision.autocast(RunConfig(), CPU):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_auto_is_fp32_on_a_cpu_that_would_emulate_bf16(monkeypatch):
    processor(monkeypatch, amx_tile=True)  # AMX without its bf16 part (amx_bf16) is no bf16 arithmetic
    assert precision.precision_and_reason(RunConfig(), CPU) == (
        "fp32", "auto: fp32, the CPU has no avx512_bf16 or amx_bf16 (bf16 would be emulated, slower than fp32)")
    with precision.autocast(RunConfig(), CPU):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("native", [True, False])
def test_what_is_asked_for_holds_whatever_the_cpu(monkeypatch, native):
    processor(monkeypatch, avx512_bf16=native)
    for device in (CPU, CUDA):
        assert precision.precision_and_reason(RunConfig(precision="fp32"), device) == (
            "fp32", "asked for: precision fp32")
        assert precision.precision_and_reason(RunConfig(precision="bf16"), device) == (
            "bf16", "asked for: precision bf16")
    assert precision.precision_and_reason(RunConfig(), CUDA) == ("bf16", "auto: bf16 autocast on CUDA")
    assert precision.resolved_precision(RunConfig(), torch.device("mps")) == "fp32"


def test_auto_keeps_a_model_that_fails_under_bf16_in_fp32(monkeypatch):
    processor(monkeypatch, avx512_bf16=True)
    why = "auto: fp32, DeBERTa v1's attention fails under bf16 autocast in transformers"
    assert precision.precision_and_reason(RunConfig(), CPU, "deberta") == ("fp32", why)
    assert precision.precision_and_reason(RunConfig(), CUDA, "deberta") == ("fp32", why)
    assert precision.precision_and_reason(RunConfig(), CPU, "deberta-v2")[0] == "bf16"
    assert precision.precision_and_reason(RunConfig(precision="bf16"), CPU, "deberta")[0] == "bf16"  # as asked


def test_deberta_v1_does_fail_under_bf16_autocast():
    """Why the exception above exists: when transformers fixes it, this fails, and the exception can go."""
    from tiny_models import tiny_config
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_config(tiny_config("deberta", num_labels=2))
    ids, mask = torch.randint(5, 50, (2, 9)), torch.ones(2, 9, dtype=torch.int64)
    mask[0, 6:] = 0
    model(input_ids=ids, attention_mask=mask)  # fp32: fine
    with pytest.raises(RuntimeError, match="BFloat16 without overflow"), torch.autocast("cpu", dtype=torch.bfloat16):
        model(input_ids=ids, attention_mask=mask)


def test_a_torch_without_get_capabilities_asks_its_older_function(monkeypatch):
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert precision.precision_and_reason(RunConfig(), CPU)[0] == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert precision.precision_and_reason(RunConfig(), CPU)[0] == "fp32"
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    assert precision.precision_and_reason(RunConfig(), CPU) == (
        "fp32", "auto: fp32, this torch cannot tell whether the CPU computes bf16 natively")


def _run(env, model, name, *flags) -> dict:
    """One `harness run` of 2 epochs on 32 toy examples into results/name; the record of seed 42 as JSON."""
    results_dir = env["results"] / name
    argv = ["run", "--task", "toy", "--model", str(model), "--mirror", str(env["mirror"]), "--results",
            str(results_dir), "--limit", "32", "--epochs", "2", "--threads", "1", "--learning-rate", "3e-3", *flags]
    assert main(argv) == 0
    return json.loads(next(results_dir.rglob("seed42.json")).read_text())


def test_a_cpu_run_in_bf16_trains_records_bf16_and_why_and_never_pools_with_fp32(monkeypatch, toy_env,
                                                                                  tiny_encoder, capsys):
    """auto on a CPU with native bf16 is the same run as --precision bf16; on one without, as --precision fp32;
    the two differ (autocast really ran), the record says which and why, and a table keeps them apart."""
    processor(monkeypatch, avx512_bf16=True)
    auto_native = _run(toy_env, tiny_encoder, "auto-native")
    processor(monkeypatch)
    auto_emulated = _run(toy_env, tiny_encoder, "auto-emulated")
    asked_bf16 = _run(toy_env, tiny_encoder, "bf16", "--precision", "bf16")
    asked_fp32 = _run(toy_env, tiny_encoder, "fp32", "--precision", "fp32")

    def numbers(raw):
        return [(e["train_loss"], e["test"]["loss"], e["test_predictions"]) for f in raw["fits"] for e in f["epochs"]]

    assert (auto_native["precision"], auto_native["settings"]["precision"]) == ("bf16", "bf16")
    assert auto_native["precision_reason"] == "auto: bf16 autocast, the CPU computes bf16 natively (avx512_bf16)"
    assert auto_native["hyperparameters"]["precision"] == "auto" and auto_native["device_type"] == "cpu"
    assert (auto_emulated["precision"], auto_emulated["settings"]["precision"]) == ("fp32", "fp32")
    assert "no avx512_bf16 or amx_bf16" in auto_emulated["precision_reason"]
    assert asked_bf16["precision_reason"] == "asked for: precision bf16"
    assert numbers(auto_native) == numbers(asked_bf16) and numbers(auto_emulated) == numbers(asked_fp32)
    assert numbers(auto_native) != numbers(auto_emulated)  # bf16 rounding changed the losses: autocast ran
    assert auto_native["fits"][0]["epochs"][-1]["train_loss"] < auto_native["fits"][0]["epochs"][0]["train_loss"]

    # Another seed in fp32 beside the bf16 record (as after an upgrade): two groups, never one cell of 2 seeds.
    _run(toy_env, tiny_encoder, "auto-native", "--precision", "fp32", "--seed", "43")
    df = results.load(toy_env["results"] / "auto-native")
    assert set(zip(df.seed, df.precision, strict=True)) == {(42, "bf16"), (43, "fp32")}
    capsys.readouterr()
    assert main(["table", "--results", str(toy_env["results"] / "auto-native"), "--protocol", "published"]) == 0
    out = capsys.readouterr().out
    assert "precision bf16 (cpu)" in out and "precision fp32 (cpu)" in out and "(n=2)" not in out
