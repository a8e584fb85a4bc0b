import json

import pytest
from records import make_record

from harness.errors import UserError
from harness.record import store, variants


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
    from pathlib import Path

    from harness.record.schema import SCHEMA_VERSION
    from harness.record.serialize import upgrade_metrics

    fixture = Path(__file__).parent / "fixtures" / "ttl_table" / "records_v1.json"
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
