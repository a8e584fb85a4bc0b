"""A sweep's time on this device before it runs, and the cells that need a hub that does not answer."""
import pytest
from conftest import closed_port, go_online
from records import make_record

from harness.cli.commands import main
from harness.config import RunConfig
from harness.grid import estimate
from harness.record.schema import Timings, Tokens
from harness.registry.load import load_models, load_tasks


def past_run(model, parameters, seconds, train_tokens, eval_tokens, device="cpu: X (2 threads)"):
    r = make_record("assin-ptbr-sts", model, 1, 0)
    r.model.parameters, r.device = parameters, device
    r.timings = Timings(load_s=1.0, tokenize_s=0.0, train_s=seconds * 0.9, eval_s=seconds * 0.1, total_s=seconds + 1)
    r.tokens = Tokens(train_real=train_tokens, train_processed=train_tokens, eval_real=eval_tokens,
                      eval_processed=eval_tokens, padding_efficiency=1.0)
    return r


def test_a_cell_is_estimated_from_past_runs_here_else_from_size_and_tokens():
    task, model = load_tasks()["assin-ptbr-sts"], load_models()["minilm-l6"]  # 2,500 / 500 / 2,000 pairs
    cfg = RunConfig(epochs=2)
    rough = estimate.cell_estimate(task, model, cfg, None, {}, {}, "cpu", 2, {})
    work = model.parameters * 2 * (2500 + estimate.EVAL_COST * 2500) * estimate.TOKENS_GUESS
    assert rough.seconds == pytest.approx(work * 6 / (2 * estimate.GUESSED_FLOPS["cpu"]))
    assert rough.basis.startswith("rough: size x tokens") and "64 tokens an example guessed" in rough.basis
    # Two past runs of this model on this device: their pace (seconds per parameter x token), tokens measured too.
    runs = [past_run("minilm-l6", 23e6, s, 200_000, 90_000) for s in (100.0, 300.0)]
    pace = estimate.paces(runs + [past_run("minilm-l6", 23e6, 10.0, 1, 1, device="cuda: H100")], "cpu: X (2 threads)")
    tokens = estimate.tokens_per_example(runs)
    assert len(pace["minilm-l6"]) == 2  # the other device's run is not this device's pace
    seen = estimate.cell_estimate(task, model, cfg, None, pace, tokens, "cpu", 2, {})
    median = sorted(pace["minilm-l6"])[0] + (sorted(pace["minilm-l6"])[1] - sorted(pace["minilm-l6"])[0]) / 2
    assert seen.basis == "2 past runs of minilm-l6 here"
    assert seen.seconds == pytest.approx(median * model.parameters * 2 * (2500 + estimate.EVAL_COST * 2500)
                                         * tokens["assin-ptbr-sts"])
    other = estimate.cell_estimate(task, load_models()["ttl-160m"], cfg, 100, pace, tokens, "cpu", 2, {})
    assert other.basis.startswith("2 past runs of other models here, scaled by size")
    assert other.seconds == pytest.approx(median * 162e6 * 2 * (100 + estimate.EVAL_COST * 200)
                                          * tokens["assin-ptbr-sts"])  # --limit 100: 100 examples per split


def test_dry_run_estimates_each_cell_and_names_those_that_need_an_unreachable_hub(tmp_path, monkeypatch, capsys):
    go_online(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    from harness.hub import local

    monkeypatch.setattr(local, "cached_repos", lambda: frozenset())
    assert main(["sweep", "--tasks", "assin-ptbr-sts", "--models", "minilm-l6,ttl-160m", "--dry-run",
                 "--results", str(tmp_path)]) == 0
    out = capsys.readouterr()
    rows = {line.split()[1]: line for line in out.out.splitlines() if line.startswith("  todo")}
    assert "NEEDS THE HUB (it does not answer from here): nicholasKluge/TeenyTinyLlama-160m" in \
        rows["assin-ptbr-sts/ttl-160m"]
    assert "NEEDS THE HUB" not in rows["assin-ptbr-sts/minilm-l6"]  # a package model, the data in the package
    assert all(" ~" in row for row in rows.values())  # a time for each
    assert "sweep: estimated " in out.err and "1 cells need the hub and it does not answer from here" in out.err
