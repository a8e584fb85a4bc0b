"""The run record: JSON round trips, schema checks, variant names, the store."""
import json
from pathlib import Path

import pytest
from conftest import REPO
from records import make_record

from harness.cli.commands import main
from harness.errors import UserError
from harness.record import store, variants
from harness.record.store import is_complete, read_record
from harness.registry.load import local_name


def test_round_trip(tmp_path):
    r = make_record("assin2", "m", 7, 88.0, clean=87.0)
    path = store.write_record(tmp_path, r)
    assert path == tmp_path / "assin2" / "m" / "default" / "seed7.json"
    back = store.read_record(path)
    assert back == r
    assert not list(tmp_path.rglob("*.tmp"))


def test_schema_mismatch_and_truncation_are_reported_not_fatal(tmp_path):
    good = store.write_record(tmp_path, make_record("assin2", "m", 1, 88.0))
    data = json.loads(good.read_text())
    old = good.with_name("seed2.json")
    old.write_text(json.dumps({**data, "schema_version": 0}))
    truncated = good.with_name("seed3.json")
    truncated.write_text(good.read_text()[:200])
    missing = good.with_name("seed4.json")
    missing.write_text(json.dumps({k: v for k, v in data.items() if k != "fits"}))
    records, warnings = store.scan(tmp_path)
    assert [r.seed for r in records] == [1]
    assert len(warnings) == 3
    assert any("seed2.json" in w and "schema_version 0" in w for w in warnings)
    assert any("seed4.json" in w and "missing field 'fits'" in w for w in warnings)


def test_variant_names():
    assert variants.variant_name({}, None) == "default"
    assert variants.variant_name({"epochs": 1}, 200) == "epochs=1_limit200"
    assert variants.variant_name({"learning_rate": 2e-5}, None) == "learning_rate=2e-05"


def test_results_path_that_is_a_file(tmp_path):
    f = tmp_path / "results"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        store.check_writable(f)
    with pytest.raises(UserError, match="is a file"):
        store.check_writable(f / "sub")


def test_version_1_records_are_read_with_their_metrics_as_a_mapping(tmp_path):

    from harness.record.schema import SCHEMA_VERSION
    from harness.record.serialize import upgrade_metrics

    fixture = REPO / "tests" / "fixtures" / "ttl_table" / "records_v1.json"
    rel, v1 = next(iter(json.loads(fixture.read_text()).items()))
    # (the fixture's macro-F1 equals its accuracy: make them differ, so a swap would show)
    v1["protocols"]["published"]["test_macro_f1"] = 0.123
    v1["fits"][0]["epochs"][0]["test"]["macro_f1"] = 0.321
    before = json.dumps(v1, sort_keys=True)
    up = upgrade_metrics(v1)
    assert json.dumps(v1, sort_keys=True) == before  # the input is left alone
    old_test = v1["fits"][0]["epochs"][0]["test"]
    assert up["fits"][0]["epochs"][0]["test"] == {"metrics": {"accuracy": old_test["accuracy"],
                                                              "macro_f1": old_test["macro_f1"]},
                                                  "loss": old_test["loss"]}
    pub = v1["protocols"]["published"]
    assert up["protocols"]["published"] == {"fit": pub["fit"], "epoch": pub["epoch"], "picked_by": "test accuracy",
                                            "main": "accuracy", "test": {"accuracy": pub["test_accuracy"],
                                                                         "macro_f1": pub["test_macro_f1"]}}
    assert upgrade_metrics(up) == up  # idempotent
    path = tmp_path / rel
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(v1))
    record = store.read_record(path)
    assert record.schema_version == SCHEMA_VERSION and record.task.type == "classification"
    assert record.protocols["published"].main_score == pub["test_accuracy"] != 0.123
    assert record.protocols["published"].test["macro_f1"] == 0.123
    assert record.fits[0].epochs[0].test.metrics == {"accuracy": old_test["accuracy"], "macro_f1": 0.321}
    assert record.fits[0].epochs[0].validation.metrics["accuracy"] == v1["fits"][0]["epochs"][0]["validation"][
        "accuracy"]


def test_an_unreadable_record_is_not_complete(tmp_path):
    for name, content in (("list", b"[]"), ("empty", b"{}"), ("binary", b"\xff\xfe\x00"),
                          ("half", b'{"schema_version": 1, "status": "complete"}')):
        (tmp_path / f"{name}.json").write_bytes(content)
        assert not is_complete(tmp_path / f"{name}.json")
    (tmp_path / "folder.json").mkdir()
    assert not is_complete(tmp_path / "folder.json")


def test_a_regression_record_round_trips_through_the_store(toy_env, tiny_encoder, capsys):
    results = toy_env["results"]
    assert main(["run", "--task", "toyreg", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
                 "--results", str(results), "--epochs", "1", "--limit", "20"]) == 0
    assert f"toyreg/{local_name(Path(tiny_encoder))} seed 42: test Pearson published" in capsys.readouterr().out
    (path,) = results.rglob("seed42.json")
    record = read_record(path)
    assert record.protocols["published"].main == "pearson"
    assert len(record.test_labels.split()) == 20 and -2 <= float(record.test_labels.split()[0]) <= 2
    raw = json.loads(path.read_text())
    assert isinstance(raw["fits"][0]["epochs"][0]["test_predictions"], str)  # compact: one string per epoch
