"""No silent mixing: records of one cell that differ in what they measured are never pooled."""
import pytest
from records import make_record, with_provenance

from harness import results
from harness.aggregate import pooling
from harness.cli.commands import main
from harness.errors import UserError
from harness.record import store


def _write(tmp_path, seed, **provenance):
    return store.write_record(tmp_path, with_provenance(make_record("imdb", "big", seed, 90.0 + seed), **provenance))


# One case per field: the second seed differs from the first in exactly this field. Precision is not
# refused but separated: each precision is its own table (selection.py; the test below).
FIELD_CASES = {
    "task definition": {"definition": "{text} edited"},
    "data fingerprint": {"data": "sha256:data2"},
    "model fingerprint": {"weights": "sha256:weights2"},
}


@pytest.mark.parametrize("field", sorted(FIELD_CASES))
def test_table_refuses_a_cell_whose_records_differ(field, tmp_path, capsys):
    _write(tmp_path, 1)
    _write(tmp_path, 2, **FIELD_CASES[field])
    assert main(["table", "--results", str(tmp_path), "--protocol", "published"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"differs in {field}" in err and "imdb/big" in err, err
    assert "seed 1" in err and "seed 2" in err
    assert not list(tmp_path.glob("table-*"))  # nothing half-written


@pytest.mark.parametrize("field", sorted(FIELD_CASES))
def test_the_api_refuses_too_and_names_only_that_field(field, tmp_path):
    _write(tmp_path, 1)
    _write(tmp_path, 2, **FIELD_CASES[field])
    df = results.load(tmp_path)
    assert [c.field for c in pooling.conflicts(df)] == [field]
    with pytest.raises(UserError, match=f"differs in {field}"):
        results.table(df, protocol="published")


def test_records_that_differ_in_precision_are_tabulated_apart_never_pooled(tmp_path, capsys):
    _write(tmp_path, 1)
    _write(tmp_path, 2, precision="bf16")
    assert [c.field for c in pooling.conflicts(results.load(tmp_path))] == ["precision"]
    assert main(["table", "--results", str(tmp_path), "--protocol", "published"]) == 0
    out = capsys.readouterr().out
    assert "precision bf16 (cpu)" in out and "precision fp32 (cpu)" in out and "(n=2)" not in out


def test_agreeing_records_pool(tmp_path, capsys):
    for seed in (1, 2, 3):
        _write(tmp_path, seed)
    assert main(["table", "--results", str(tmp_path), "--protocol", "published"]) == 0
    assert "92.00 ± " in capsys.readouterr().out  # mean of 91, 92, 93


def test_unknown_values_are_not_compared(tmp_path, capsys):
    """A migrated v1 record cannot say what it used: it is pooled, not taken for a difference."""
    _write(tmp_path, 1)
    _write(tmp_path, 2, definition=None, data=None, weights="unknown", precision=None)
    assert pooling.conflicts(results.load(tmp_path)) == []
    assert main(["table", "--results", str(tmp_path)]) == 0


def test_different_cells_may_differ(tmp_path):
    """Two models, or two variants, are different experiments: only a cell's own seeds must agree."""
    store.write_record(tmp_path, with_provenance(make_record("imdb", "big", 1, 90.0)))
    store.write_record(tmp_path, with_provenance(make_record("imdb", "small", 1, 80.0), weights="sha256:other"))
    store.write_record(tmp_path, with_provenance(make_record("imdb", "big", 1, 80.0, variant="limit10"),
                                                 precision="bf16"))
    assert pooling.conflicts(results.load(tmp_path)) == []


def test_the_check_is_generic_over_fields(tmp_path):
    _write(tmp_path, 1)
    _write(tmp_path, 2)
    df = results.load(tmp_path)
    df.loc[df.seed == 2, "harness_version"] = "9.9"
    (found,) = pooling.conflicts(df, {"harness version": "harness_version"})
    assert found.field == "harness version" and found.seeds == {"test": [1], "9.9": [2]}
    assert pooling.conflicts(df) == []
