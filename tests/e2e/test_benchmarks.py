"""Each benchmark script runs (smoke versions), so none can rot."""
import json
import subprocess
import sys

import pytest
from conftest import REPO

BENCH = REPO / "benchmarks"


def gpu_throughput_tiny(tmp_path, *args) -> dict:
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(BENCH / "gpu_throughput.py"), "--tiny", "--steps", "2",
                           "--eval-examples", "16", *args, "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_gpu_throughput_runs_on_cpu_with_tiny_shapes(tmp_path):
    data = gpu_throughput_tiny(tmp_path, "--tasks", "assin2,agnews")
    assert {(r["model"], r["task"], r["mode"]) for r in data["rows"]} == {
        (m, t, mode) for m in ("ttl-160m", "bertimbau-base") for t in ("assin2", "agnews") for mode in ("seed", "ours")}
    for r in data["rows"]:
        assert r["steps"] == 2 and 0 < r["padding_efficiency"] <= 1 and r["real_tokens_per_s"] > 0


@pytest.mark.slow
def test_vs_seed_smoke(assin2_mirror, tmp_path):
    out = tmp_path / "vs.json"
    proc = subprocess.run([sys.executable, str(BENCH / "vs_seed.py"), "--mirror", str(assin2_mirror), "--limit", "32",
                           "--epochs", "1", "--ablate", "fp32", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["side"] for r in rows] == ["seed recipe", "harness", "harness, fp32 (no bf16 autocast)"]
    assert rows[2]["precision"] == "fp32"  # the one lever named, put back
    assert rows[1]["accuracy_clean"] is not None and rows[0]["accuracy_clean"] is None
    assert all(0 <= r["accuracy_published"] <= 100 and r["wall_s"] > 0 for r in rows)
    assert "ratio" in proc.stdout


@pytest.mark.slow
def test_gpu_throughput_concurrency_mode(tmp_path):
    rows = gpu_throughput_tiny(tmp_path, "--concurrency", "1,2")["concurrency"]
    assert [r["k"] for r in rows] == [1, 2] and len(rows[1]["per_cell"]) == 2 and rows[0]["gain"] == 1.0


def test_first_minute_hub_part_smoke():
    """benchmarks/first_minute.py --only hub, against a closed local port (never the real hub)."""
    import os
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, str(BENCH / "first_minute.py"), "--only", "hub"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "hub unreachable: exit 2 after" in proc.stdout and "1 line(s) on stderr" in proc.stdout


@pytest.mark.slow
def test_lora_benchmark_smoke(assin2_mirror, tmp_path):
    out = tmp_path / "lora.json"
    proc = subprocess.run([sys.executable, str(BENCH / "lora.py"), "--tiny", "--steps", "2", "--settings",
                           "full,lora,lora+gc", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [r["setting"] for r in rows] == ["full", "lora", "lora+gc"]
    assert rows[1]["trainable"] == rows[2]["trainable"] < rows[0]["trainable"]
    assert all(r["steps"] == 2 and r["step_s"] > 0 and r["peak_rss"] >= r["model_rss"] > 0 for r in rows)
    assert rows[2]["saved_bytes"] < rows[1]["saved_bytes"]  # checkpointing keeps fewer activations
    assert "lora / full" in proc.stdout and "target:" in proc.stdout


def test_assin_tasks_prints_the_baselines_from_the_real_data(assin_mirror):
    """benchmarks/assin_tasks.py: the trivial baselines of the measured tasks, from the real test labels."""
    proc = subprocess.run([sys.executable, str(BENCH / "assin_tasks.py"), "--mirror", str(assin_mirror),
                           "--baselines-only"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "assin-ptbr-rte (main macro_f1; 2000 test examples)" in lines
    assert "  pearson      baseline    0.00  " in lines and "  mcc          baseline    0.00  " in lines
    accuracy = next(ln for ln in lines if ln.startswith("  accuracy"))
    assert 70 < float(accuracy.split()[2]) < 85  # NONE is about 78% of ASSIN PT-BR's test pairs


def test_marks_calibration_smoke(tmp_path):
    """benchmarks/marks_calibration.py on a few columns: every setting is printed with both tests' rates."""
    out = tmp_path / "marks.json"
    proc = subprocess.run([sys.executable, str(BENCH / "marks_calibration.py"), "--columns", "20", "--examples", "100",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 5 and all(0 <= r["seed_aware"] <= 1 and 0 <= r["welch"] <= 1 for r in rows)
    assert "Average of 3 tasks" in proc.stdout and "seed-aware %" in proc.stdout


@pytest.mark.slow
def test_tuned_benchmark_smoke(assin2_mirror, tmp_path):
    """benchmarks/tuned.py on 16 examples, 1 epoch, 2 seeds and one-point grids: default recipe vs tuned, full and
    LoRA (full's only point is the recipe's rate: its tuned cell is the recipe's runs, reused, not run again)."""
    out = tmp_path / "tuned.json"
    proc = subprocess.run([sys.executable, str(BENCH / "tuned.py"), "--mirror", str(assin2_mirror), "--limit", "16",
                           "--epochs", "1", "--seeds", "2", "--full-grid", "4e-5", "--lora-grid", "4e-4",
                           "--results", str(tmp_path / "results"), "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["adaptation"] for r in rows] == ["full", "lora"]
    for r in rows:
        assert r["default"]["n"] == 2 and r["tuned"]["n"] == 2 and r["search_cost"]["runs"] == 1
    assert rows[0]["chosen_lr"] == 4e-5 and rows[0]["tuned"] == rows[0]["default"]
    assert rows[1]["chosen_lr"] == 4e-4 and rows[1]["tuned"]["variant"] != rows[1]["default"]["variant"]
    assert "| full |" in proc.stdout and "| lora |" in proc.stdout and "protocol `tuned`" in proc.stdout
    assert "### Searches (`harness tune`)" in proc.stdout


@pytest.mark.slow
def test_cpu_precision_speed_smoke(tmp_path):
    """benchmarks/cpu_precision.py speed: fp32 and bf16 steps under each oneDNN cap, with a tiny BERT."""
    out = tmp_path / "speed.json"
    proc = subprocess.run([sys.executable, str(BENCH / "cpu_precision.py"), "speed", "--tiny", "--steps", "1",
                           "--rounds", "1", "--threads", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["setting"].split(" (")[0] for r in rows] == [
        "this CPU", "oneDNN capped at AVX512_CORE", "oneDNN capped at AVX2"]
    assert all(r["ms_per_step"]["fp32"] > 0 and r["ms_per_step"]["bf16"] > 0 for r in rows)
    assert "| bf16 / fp32 |" in proc.stdout


@pytest.mark.slow
def test_cpu_precision_accuracy_smoke(toy_env, tiny_encoder, tmp_path):
    """benchmarks/cpu_precision.py accuracy: both precisions run, tabulated apart, and compared seed-aware."""
    out = tmp_path / "accuracy.json"
    proc = subprocess.run([sys.executable, str(BENCH / "cpu_precision.py"), "accuracy", "--task", "toy", "--model",
                           str(tiny_encoder), "--mirror", str(toy_env["mirror"]), "--seeds", "2", "--epochs", "1",
                           "--limit", "24", "--results", str(tmp_path / "r"), "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert [(r["precision"], r["seeds"]) for r in figures["rows"]] == [("fp32", [42, 43]), ("bf16", [42, 43])]
    assert figures["rows"][1]["reasons"] == ["asked for: precision bf16"]
    assert "precision fp32 (cpu)" in figures["tables"]["fp32/clean"]
    assert "precision bf16 (cpu)" in figures["tables"]["bf16/published"]
    for proto in ("published", "clean"):
        text = figures["compare"][proto]
        assert f"protocol {proto}" in text and "precision A fp32 (cpu), B bf16 (cpu)" in text
        assert "p = " in text and "McNemar" in text
    assert "Procedure level" in proc.stdout
