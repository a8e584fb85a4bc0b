import json

import pytest
from records import make_record

from harness import store
from harness.errors import UserError


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
    assert store.variant_name({}, None) == "default"
    assert store.variant_name({"epochs": 1}, 200) == "epochs=1_limit200"
    assert store.variant_name({"learning_rate": 2e-5}, None) == "learning_rate=2e-05"


def test_results_path_that_is_a_file(tmp_path):
    f = tmp_path / "results"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        store.check_writable(f)
    with pytest.raises(UserError, match="is a file"):
        store.check_writable(f / "sub")
