"""Across the pipeline: a killed run leaves nothing half-written, concurrent runs stay intact, no secret is written."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from harness.data.prepare import cache_dir
from harness.record.store import read_record, scan


def _start_run(toy_env, model, results, seed=42, extra=(), env=None):
    cmd = [sys.executable, "-m", "harness", "run", "--task", "toy", "--model", str(model), "--mirror",
           str(toy_env["mirror"]), "--results", str(results), "--seed", str(seed), "--threads", "1", *extra]
    # SIGINT back to its default in the child: a suite started in the background (nohup, `&`) ignores it, and
    # Python leaves an ignored SIGINT ignored, so the interrupt test would test nothing.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_training(proc, timeout=120):
    """Read stderr until the run reports a training step: it is then mid-training."""
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if " step " in line and "epoch 1/" in line:
            return seen
    raise AssertionError(f"the run never reached training: {''.join(seen)[-500:]}")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_run_killed_mid_training_leaves_nothing_and_the_rerun_completes(sig, toy_env, tiny_decoder):
    results = toy_env["results"]
    proc = _start_run(toy_env, tiny_decoder, results, extra=["--epochs", "30"])
    _wait_for_training(proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130
        assert err.strip().splitlines()[-1] == "harness: interrupted; no record was written for the run in progress"
    files = [p for p in results.rglob("*") if p.is_file()] if results.exists() else []
    assert files == []  # no record, no temp file
    rerun = _start_run(toy_env, tiny_decoder, results, extra=["--epochs", "1"])
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    records, warnings = scan(results)
    assert len(records) == 1 and warnings == []


@pytest.mark.slow
def test_eight_concurrent_runs_give_eight_intact_records_and_an_intact_cache(toy_env, tiny_encoder):
    results = toy_env["results"]
    procs = [_start_run(toy_env, tiny_encoder, results, seed=s, extra=["--epochs", "1", "--limit", "24"])
             for s in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    records, warnings = scan(results)
    assert warnings == [] and sorted(r.seed for r in records) == list(range(8))
    assert len({r.data_cache.fingerprint for r in records}) == 1  # all used the same cache entry
    entries = list(cache_dir().glob("*.npz"))
    assert [p.name for p in cache_dir().iterdir() if p.suffix != ".npz"] == []  # no temp files left
    key = records[0].data_cache.fingerprint
    with np.load(cache_dir() / f"{key}.npz") as z:
        assert len(z["train.labels"]) == 24
    assert entries


@pytest.mark.slow  # end to end: a training in a subprocess
def test_no_secret_reaches_a_record(toy_env, tiny_encoder):
    secret = "hf_SECRETtoken1234567890"
    proc = _start_run(toy_env, tiny_encoder, toy_env["results"], extra=["--epochs", "1", "--limit", "16"],
                      env={"HF_TOKEN": secret, "HUGGING_FACE_HUB_TOKEN": secret})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert secret not in out + err
    (path,) = toy_env["results"].rglob("seed42.json")
    assert secret not in path.read_text()
    assert read_record(path).status == "complete"
