"""Task types, metrics and suites (issue 13): regression through the one routine for both families, the
ASSIN tasks on the real data, bad labels, and the table's suites, metrics and normalized scores."""
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from records import make_record

from harness import metrics
from harness.cli.commands import main
from harness.config import RunConfig
from harness.data.splits import EncodedSplit, load_raw
from harness.finetune import batches, cell
from harness.record import predictions
from harness.record.store import read_record, write_record
from harness.registry.load import load_tasks, local_model, local_name

QUIET = dict(log=lambda m: None)


# ------------------------------------------------------------------ regression through the routine

@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_regression_through_the_one_routine(toy_env, tiny_decoder, tiny_encoder, family):
    task = load_tasks()["toyreg"]
    spec = local_model(tiny_decoder if family == "decoder" else tiny_encoder)
    rec = cell.run_cell(task, spec, RunConfig(epochs=8, learning_rate=5e-3, batch_size=8), seed=1,
                           mirror=str(toy_env["mirror"]), **QUIET)
    fit = rec.fits[0]
    assert rec.task.type == "regression" and rec.model.family == family
    assert [set(e.test.metrics) for e in fit.epochs] == [{"pearson", "spearman", "mse"}] * 8
    # learns: the score follows the word, and the error ends below that of always predicting the mean
    gold = predictions.decode_predictions(rec.test_labels, "regression")
    assert rec.protocols["published"].test["pearson"] > 0.8
    assert fit.epochs[-1].test.metrics["mse"] < metrics.trivial_baseline("mse", gold)
    # both protocols pick by the main metric (Pearson): test for published, validation for clean
    assert rec.protocols["published"].epoch == 1 + int(np.argmax([e.test.metrics["pearson"] for e in fit.epochs]))
    assert rec.protocols["clean"].epoch == 1 + int(np.argmax([e.validation.metrics["pearson"] for e in fit.epochs]))
    assert rec.protocols["clean"].picked_by == "validation pearson"
    # per-example predictions in the record, from which every metric recomputes exactly
    assert len(gold) == 40 and gold.min() >= -2 and gold.max() <= 2
    for e in fit.epochs:
        preds = predictions.decode_predictions(e.test_predictions, "regression")
        assert len(preds) == 40 and metrics.compute(task.metrics, preds, gold) == e.test.metrics


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_three_classes_through_the_one_routine(toy_env, tiny_decoder, tiny_encoder, family):
    """A 3-class task scored by macro-F1 (imbalanced 3:2:1, as ASSIN's entailment): both families learn it,
    both protocols pick the epoch by macro-F1, and the stored predictions give back every metric."""
    task = load_tasks()["toy3"]
    spec = local_model(tiny_decoder if family == "decoder" else tiny_encoder)
    rec = cell.run_cell(task, spec, RunConfig(epochs=10, learning_rate=5e-3, batch_size=8), seed=1,
                           mirror=str(toy_env["mirror"]), **QUIET)
    fit = rec.fits[0]
    gold = predictions.decode_predictions(rec.test_labels, "classification")
    assert sorted(set(gold.tolist())) == [0, 1, 2] and rec.model.family == family
    assert [set(e.test.metrics) for e in fit.epochs] == [{"macro_f1", "accuracy", "mcc"}] * 10
    # learns: from the trivial baseline of macro-F1 at the first epochs (always NONE, about 0.23 here) to well
    # above it (a tiny model on 96 examples: 0.60 encoder, 0.79 decoder at seed 1)
    baseline = metrics.trivial_baseline("macro_f1", gold, 3)
    assert fit.epochs[0].test.metrics["macro_f1"] < baseline + 0.05
    assert rec.protocols["published"].test["macro_f1"] > baseline + 0.25
    assert rec.protocols["published"].epoch == 1 + int(np.argmax([e.test.metrics["macro_f1"] for e in fit.epochs]))
    assert rec.protocols["clean"].epoch == 1 + int(np.argmax([e.validation.metrics["macro_f1"]
                                                              for e in fit.epochs]))
    assert rec.protocols["clean"].picked_by == "validation macro_f1"
    for e in fit.epochs:
        preds = predictions.decode_predictions(e.test_predictions, "classification")
        assert metrics.compute(task.metrics, preds, gold) == e.test.metrics


def test_regression_labels_reach_the_loss_as_floats():
    split = EncodedSplit(np.array([5, 6, 7, 8], dtype=np.int32), np.array([0, 2, 4]), np.array([1.25, 4.5]))
    _, labels, _, _ = batches.collate(split, np.array([1, 0]), 0, torch.device("cpu"))
    assert labels.dtype == torch.float32 and labels.tolist() == [4.5, 1.25]


def test_a_regression_record_round_trips_through_the_store(toy_env, tiny_encoder, capsys):
    results = toy_env["results"]
    assert main(["run", "--task", "toyreg", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(results), "--epochs", "1", "--limit", "20"]) == 0
    assert f"toyreg/{local_name(Path(tiny_encoder))} seed 42: test pearson published" in capsys.readouterr().out
    (path,) = results.rglob("seed42.json")
    record = read_record(path)
    assert record.protocols["published"].main == "pearson"
    assert len(record.test_labels.split()) == 20 and -2 <= float(record.test_labels.split()[0]) <= 2
    raw = json.loads(path.read_text())
    assert isinstance(raw["fits"][0]["epochs"][0]["test_predictions"], str)  # compact: one string per epoch


# ------------------------------------------------------------------ the real ASSIN data

EXPECTED = {  # task -> (train, validation, test, label check)
    "assin2-sts": (6500, 500, 2448, "float"), "assin-ptbr-sts": (2500, 500, 2000, "float"),
    "assin-ptpt-sts": (2500, 500, 2000, "float"), "assin-ptbr-rte": (2500, 500, 2000, 3),
    "assin-ptpt-rte": (2500, 500, 2000, 3),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_assin_tasks_load_from_the_real_mirror(assin_mirror, name):
    task = load_tasks()[name]
    raw, source, _ = load_raw(task, str(assin_mirror))
    *sizes, kind = EXPECTED[name]
    assert [len(raw[r]) for r in ("train", "validation", "test")] == sizes
    assert source.endswith(task.hub_id)
    for split in raw.values():
        if kind == "float":
            assert split.labels.dtype == np.float64 and split.labels.min() >= 1 and split.labels.max() <= 5
            assert len(np.unique(split.labels)) > 10
        else:
            assert sorted(np.unique(split.labels)) == [0, 1, 2]
    if name == "assin-ptbr-rte":  # the imbalance that makes macro-F1 the main metric
        assert np.bincount(raw["test"].labels).tolist() == [1553, 341, 106]


def test_the_ptbr_and_ptpt_configs_are_different_data(assin_mirror):
    tasks = load_tasks()
    br = load_raw(tasks["assin-ptbr-rte"], str(assin_mirror))[0]["test"]
    pt = load_raw(tasks["assin-ptpt-rte"], str(assin_mirror))[0]["test"]
    assert br.columns["premise"][0] != pt.columns["premise"][0]


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
    assert main(["table", "--results", str(results)]) == 2  # the ttl table has none of these tasks
    assert "no task in suite 'ttl' has records" in capsys.readouterr().err


# ------------------------------------------------------------------ bad labels

def _write_reg(env, values):
    from conftest import write_parquet

    for split in ("train", "validation", "test"):  # one column type in every split, as a real dataset has
        write_parquet(env["mirror"] / "tester" / "toyreg", split,
                      {"premise": ["a"] * len(values), "hypothesis": ["b"] * len(values), "score": values})


@pytest.mark.parametrize("values, message", [
    (["alto", "baixo"], "label column 'score' in split 'train' holds str 'alto'; a regression task needs numbers "
                        "in -2..2"),
    ([1.0, 7.5], "label 7.5 in split 'train' is outside the declared range -2..2; fix label.range in"),
    ([True, False], "holds bool True"),
])
def test_bad_regression_labels_are_one_line(toy_env, tiny_encoder, capsys, values, message):
    _write_reg(toy_env, values)
    code = main(["run", "--task", "toyreg", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(toy_env["results"]), "--epochs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not toy_env["results"].exists()


@pytest.mark.parametrize("change, message", [
    ("main: pearson\n", "toy.yaml: field 'main' ('pearson') must be one of the task's metrics"),
    ("metrics: [accuracy, spearman]\n", "toy.yaml: field 'metrics' lists 'spearman', which does not fit a "
                                        "classification task"),
    ("suites: [ttl, asin]\n", "toy.yaml: field 'suites' names unknown suite 'asin'"),
])
def test_bad_task_files_are_one_line_naming_file_and_field(toy_env, tiny_encoder, capsys, change, message):
    from conftest import TOY_TASK

    (toy_env["registry"] / "tasks" / "toy.yaml").write_text(TOY_TASK + change, encoding="utf-8")
    code = main(["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(toy_env["results"])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


# ------------------------------------------------------------------ suites, metrics, normalized scores

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
    from pathlib import Path

    registry = tmp_path / "registry"
    shutil.copytree(Path(__file__).resolve().parent.parent / "tasks", registry / "tasks")
    shutil.copy(Path(__file__).resolve().parent.parent / "models.yaml", registry / "models.yaml")
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


def test_subsets_and_carved_validation_of_a_regression_are_stratified_by_decile():
    from harness.data.splits import carve_validation, strata, stratified_subset

    rng = np.random.default_rng(0)
    labels = np.round(rng.uniform(1, 5, 2000) ** 2 / 5 + 1, 2)  # skewed, with ties
    deciles = strata(labels)
    assert sorted(np.unique(deciles)) == list(range(10))
    sub = stratified_subset(labels, 200, seed=0)
    assert np.abs(np.bincount(deciles[sub], minlength=10) - np.bincount(deciles) / 10).max() <= 1
    parts = carve_validation(labels, 100, seed=3)
    assert len(parts["validation"]) == 100 and len(np.intersect1d(parts["validation"], parts["train"])) == 0
    assert np.abs(np.bincount(deciles[parts["validation"]], minlength=10) - np.bincount(deciles) / 20).max() <= 1
    assert np.array_equal(strata(np.array([1, 0, 2])), [1, 0, 2])  # class ids are their own strata
