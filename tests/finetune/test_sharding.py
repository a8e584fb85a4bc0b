"""FSDP sharding over processes gives the numbers one process gives."""
import json
import os
import subprocess
import sys

import pytest

from harness.finetune.sharding import forward_passes


def test_every_process_runs_as_many_evaluation_passes_as_the_largest_share():
    # 10 examples over 3 processes: shares of 4, 3, 3 (strided); batches of 2 -> 2 passes each
    assert forward_passes(10, 3, 2) == 2
    assert forward_passes(9, 2, 4) == 2  # shares 5 and 4: rank 0 needs 2, rank 1 joins a second (dummy) one
    assert forward_passes(8, 2, 4) == 1


def _run(args, results, env):
    out = subprocess.run([sys.executable, "-m", "harness", "run", *args, "--results", str(results)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (path,) = results.rglob("seed42.json")
    return json.loads(path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("peft", ["none", "lora"])
def test_fsdp_on_two_cpu_processes_matches_one_process(toy_env, tiny_decoder, tmp_path, peft):
    """The sharded run trains the same cell to the same numbers (Llama has no dropout; LoRA's dropout is
    turned off), evaluates every example once, and gathers the checkpoint to rank 0."""
    from safetensors.torch import load_file

    common = ["--task", "toy", "--model", str(tiny_decoder), "--mirror", str(toy_env["mirror"]), "--epochs", "2",
              "--learning-rate", "3e-3", "--limit", "40", "--threads", "1", "--device", "cpu", "--save-every-epoch",
              "--eval-batch-size", "8",  # 40 test examples: shares of 20, so 3 passes each with a short last one
              "--precision", "fp32"]  # the same numbers to 1e-4: in bf16 the two reductions round apart
    if peft == "lora":
        common += ["--peft", "lora", "--lora-r", "4", "--lora-dropout", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = _run(common, tmp_path / "one", env)
    two = _run(common + ["--processes", "2", "--sharding", "fsdp"], tmp_path / "two", env)
    assert two["device"].startswith("2 x cpu") and one["variant"] == two["variant"]
    assert two["adaptation"]["sharding"] == "fsdp" and one["adaptation"]["sharding"] == "none"
    assert two["model"]["last_layer"] == "pooled"
    assert two["tokens"]["train_real"] == one["tokens"]["train_real"]
    assert two["tokens"]["eval_real"] == one["tokens"]["eval_real"]  # no example evaluated twice or skipped
    for ea, eb in zip(one["fits"][0]["epochs"], two["fits"][0]["epochs"], strict=True):
        assert ea["test_predictions"] == eb["test_predictions"]
        assert eb["test"]["loss"] == pytest.approx(ea["test"]["loss"], rel=1e-4)
        assert eb["train_loss"] == pytest.approx(ea["train_loss"], rel=1e-4)
    assert two["cost"]["energy_kwh"] > 0  # summed over the processes
    name = "adapter_model.safetensors" if peft == "lora" else "model.safetensors"
    (a,) = (tmp_path / "one").rglob(f"train-epoch2/{name}")
    (b,) = (tmp_path / "two").rglob(f"train-epoch2/{name}")
    a, b = load_file(a), load_file(b)
    assert a.keys() == b.keys()
    for key in a:
        assert b[key].shape == a[key].shape
        assert (b[key] - a[key]).abs().max() <= 1e-4 * (1 + a[key].abs().max()), key
