"""The real ASSIN and Assin2 data (../shared) through the command line, start to finish."""
import re
from pathlib import Path

import pytest
from conftest import harness

from harness.cli.commands import main
from harness.record.store import read_record
from harness.registry.load import local_name


@pytest.mark.slow  # end to end: a training on the real data in a subprocess
def test_real_assin2_through_the_cli(assin2_mirror, tiny_encoder, tmp_path):
    results = tmp_path / "results"
    out = harness("run", "--task", "assin2", "--model", tiny_encoder, "--mirror", assin2_mirror, "--limit", 200,
                  "--results", results)
    assert out.returncode == 0, out.stderr
    record = read_record(results / "assin2" / local_name(tiny_encoder) / "limit200" / "seed42.json")
    assert record.task.source.endswith("nilc-nlp/assin2") and record.task.revision_resolved.startswith("sha256")
    assert record.dataset_sizes == {"train": 200, "validation": 200, "test": 200}
    assert len(record.test_labels) == 200 and set(record.test_labels) == {"0", "1"}
    assert 0.0 <= record.protocols["published"].test["accuracy"] <= 1.0
    table = harness("table", "--results", results)
    assert "| Models | Assin2 | Average |" in table.stdout  # only the task that ran is a column
    assert re.search(r"\| tiny-bert \| \d+\.\d\d \| \d+\.\d\d \|", table.stdout)  # alone: no mark


def test_real_assin_through_the_cli_then_the_suite_table(assin_mirror, tiny_encoder, tmp_path, capsys):
    results = tmp_path / "results"
    for task in ("assin-ptbr-sts", "assin-ptbr-rte"):
        assert main(["run", "--task", task, "--model", str(tiny_encoder), "--mirror", str(assin_mirror),
                     "--limit", "60", "--epochs", "1", "--results", str(results)]) == 0
    rte = read_record(results / "assin-ptbr-rte" / local_name(Path(tiny_encoder)) / "epochs=1_limit60" / "seed42.json")
    assert rte.protocols["clean"].main == "macro_f1" and set(rte.test_labels) == {"0", "1", "2"}
    assert set(rte.protocols["clean"].test) == {"macro_f1", "accuracy", "mcc", "weighted_f1"}
    capsys.readouterr()
    assert main(["table", "--results", str(results), "--suite", "assin"]) == 0
    out = capsys.readouterr().out
    # Each column names its metric; only the tasks that ran are columns.
    assert "| Models | ASSIN PT-BR RTE (Macro-F1) | ASSIN PT-BR STS (Pearson) |\n" in out
    assert "Average" not in out.split("\n\n")[1]  # different metrics: no Average
    assert main(["table", "--results", str(results), "--suite", "assin", "--normalized"]) == 0
    out = capsys.readouterr().out
    assert "| Models | ASSIN PT-BR RTE | ASSIN PT-BR STS | Average |\n" in out and "Normalized score" in out
    assert main(["table", "--results", str(results)]) == 0  # the ttl table has none: the assin one, said so
    out = capsys.readouterr()
    assert "showing suite 'assin'" in out.err and "| Models | ASSIN PT-BR RTE (Macro-F1) |" in out.out
    assert main(["table", "--results", str(results), "--suite", "ttl"]) == 2  # named: one line naming assin
    assert "no task in suite 'ttl' has records: the suites with records: assin" in capsys.readouterr().err
