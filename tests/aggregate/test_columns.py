"""Which tasks a table shows and what each column holds: suites, --metric, normalized scores, lower-is-better."""
import csv
import io

import numpy as np
import pytest
from conftest import REPO
from records import make_record

from harness.cli.commands import main
from harness.record.store import write_record

STS_GOLD = [1.0, 2.0, 3.0, 4.0, 5.0, 3.0]


RTE_GOLD = [0, 0, 0, 1, 1, 2]


def _assin_records():
    """One model on every task of the assin suite (and imdb, of the ttl suite)."""
    sts = {"pearson": 0.5, "spearman": 0.4, "mse": 1.0}
    rte = {"macro_f1": 0.6, "accuracy": 0.7, "mcc": 0.3, "weighted_f1": 0.65}
    regression = dict(gold=STS_GOLD, preds=STS_GOLD, task_type="regression", main="pearson", test=sts)
    return ([make_record(t, "m", 1, 0, **regression) for t in ("assin2-sts", "assin-ptbr-sts", "assin-ptpt-sts")]
            + [make_record(t, "m", 1, 0, gold=RTE_GOLD, main="macro_f1", test=rte)
               for t in ("assin-ptbr-rte", "assin-ptpt-rte")]
            + [make_record("imdb", "m", 1, 90.0), make_record("assin2", "m", 1, 80.0)])


def _table(tmp_path, capsys, *args):
    results = tmp_path / "results"
    if not results.exists():
        for r in _assin_records():
            write_record(results, r)
    capsys.readouterr()
    code = main(["table", "--results", str(results), "--format", "csv", "--protocol", "published", *args])
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    return code, {row["column"]: (float(row["mean"]), row["metric"]) for row in rows}, captured.err


def test_suite_all_shows_every_task_with_its_main_metric(tmp_path, capsys):
    code, cells, _ = _table(tmp_path, capsys, "--suite", "all")
    assert code == 0 and "average" not in cells  # no average across different metrics
    assert (cells["imdb"], cells["assin2-sts"], cells["assin-ptbr-rte"]) == (
        (90.0, "accuracy"), (50.0, "pearson"), (60.0, "macro_f1"))
    assert len(cells) == 7


def test_metric_flag_shows_another_recorded_metric(tmp_path, capsys):
    mse = _table(tmp_path, capsys, "--suite", "assin", "--metric", "mse")[1]
    assert mse == {t: (1.0, "mse") for t in ("assin2-sts", "assin-ptbr-sts", "assin-ptpt-sts", "average")}
    mcc = _table(tmp_path, capsys, "--suite", "assin", "--metric", "mcc")[1]
    # assin2 declares mcc, but its record (like a version 1 record) has none: an empty cell, so no average
    assert mcc == {"assin-ptbr-rte": (30.0, "mcc"), "assin-ptpt-rte": (30.0, "mcc")}
    code, _, err = _table(tmp_path, capsys, "--metric", "pearsn")
    assert code == 2 and "unknown metric 'pearsn'" in err
    code, _, err = _table(tmp_path, capsys, "--suite", "ttl", "--metric", "pearson")
    assert code == 2 and "no task in suite 'ttl' that records pearson" in err
    code, _, err = _table(tmp_path, capsys, "--suite", "tll")
    assert code == 2 and "unknown suite 'tll'" in err and len(err.strip().splitlines()) == 1


def test_normalized_scores_against_hand_computed_baselines(tmp_path, capsys):
    code, cells, _ = _table(tmp_path, capsys, "--suite", "assin", "--normalized")
    assert code == 0 and {v[1] for v in cells.values()} == {"normalized"}
    # Pearson: baseline 0 (zero correlation), best 1 -> the score itself
    assert cells["assin2-sts"][0] == pytest.approx(50.0, abs=1e-4)
    # Macro-F1 on gold 0,0,0,1,1,2 (k = 3): uniform guessing 2p/(1 + 3p) per class, p = 1/2, 1/3, 1/6
    uniform = np.mean([2 * p / (1 + 3 * p) for p in (1 / 2, 1 / 3, 1 / 6)])
    majority = (2 * 3 / (2 * 3 + 3)) / 3  # always class 0: F1 of class 0 = 2/3, the others 0
    base = max(uniform, majority)
    assert base == pytest.approx(0.31852, abs=1e-5)
    assert cells["assin-ptbr-rte"][0] == pytest.approx(100 * (0.6 - base) / (1 - base), abs=1e-4)
    # Accuracy: make_record's gold is 0,1 x 5 -> majority share 0.5
    assert cells["assin2"][0] == pytest.approx(100 * (0.8 - 0.5) / 0.5, abs=1e-4)
    # normalized scores share one scale: the Average is back, the mean of the six
    assert len(cells) == 7 and cells["average"][0] == pytest.approx(
        np.mean([v for t, (v, _) in cells.items() if t != "average"]), abs=1e-3)
    # MSE normalized: baseline = variance of the test labels (always the mean), best 0
    _, mse, _ = _table(tmp_path, capsys, "--suite", "assin", "--metric", "mse", "--normalized")
    assert mse["assin2-sts"][0] == pytest.approx(100 * (1 - 1.0 / np.var(STS_GOLD)), abs=1e-4)


def test_a_declared_baseline_wins(tmp_path, capsys, monkeypatch):
    import shutil

    registry = tmp_path / "registry"
    shutil.copytree(REPO / "tasks", registry / "tasks")
    shutil.copy(REPO / "models.yaml", registry / "models.yaml")
    sts = registry / "tasks" / "assin2-sts.yaml"
    sts.write_text(sts.read_text() + "baselines: {pearson: 0.2}\nmax_scores: {pearson: 0.9}\n")
    monkeypatch.setenv("HARNESS_REGISTRY", str(registry))
    _, cells, _ = _table(tmp_path, capsys, "--suite", "assin", "--normalized")
    assert cells["assin2-sts"][0] == pytest.approx(100 * (0.5 - 0.2) / (0.9 - 0.2), abs=1e-4)


def test_lower_is_better_columns_mark_the_lowest_best():
    from harness.aggregate.table import ColumnScore, build_table
    from harness.outputs.table_text import legend

    recs = [make_record("sts", m, 1, 0, gold=STS_GOLD, task_type="regression", main="pearson",
                        test={"pearson": p, "spearman": p, "mse": e})
            for m, p, e in (("a", 0.9, 0.3), ("b", 0.5, 0.9))]
    by_mse = build_table(recs, "published", [("sts", "STS")], [("a", "A"), ("b", "B")],
                         scoring={"sts": ColumnScore("mse")})
    # one seed each: the lowest is marked as the untested best (†)
    assert by_mse.marks[("a", "sts")] == "untested" and by_mse.rows[0].cells["sts"].mean == pytest.approx(0.3)
    by_pearson = build_table(recs, "published", [("sts", "STS")], [("a", "A"), ("b", "B")],
                             scoring={"sts": ColumnScore("pearson")})
    assert by_pearson.marks[("a", "sts")] == "untested" and by_pearson.rows[0].cells["sts"].mean == pytest.approx(90)
    # three seeds each: the Welch test finds the lowest MSE significantly best
    recs = [make_record("sts", m, s, 0, gold=STS_GOLD, task_type="regression", main="pearson",
                        test={"pearson": 0.5, "spearman": 0.5, "mse": e + s / 100})
            for m, e in (("a", 0.3), ("b", 0.9)) for s in (1, 2, 3)]
    by_mse = build_table(recs, "published", [("sts", "STS")], [("a", "A"), ("b", "B")],
                         scoring={"sts": ColumnScore("mse")})
    assert by_mse.marks[("a", "sts")] == "best" and ("b", "sts") not in by_mse.marks
    assert "MSE (lower is better) on test" in legend(by_mse)


def test_a_default_suite_without_records_falls_back_to_the_suite_they_are_in_saying_so():
    from harness.aggregate.columns import default_suite
    from harness.registry.load import load_tasks

    tasks = load_tasks()
    assert default_suite(tasks, {"assin2", "imdb"}) == ("ttl", None)  # ttl has records: nothing to say
    assert default_suite(tasks, set()) == ("ttl", None)
    suite, note = default_suite(tasks, {"assin-ptbr-sts"})  # the demo's records
    assert suite == "assin" and "no task of the default suite 'ttl' has records: showing suite 'assin'" in note
    suite, note = default_suite(tasks, {"assin-ptbr-sts", "unregistered-task"})
    assert suite == "assin"
