"""Where `harness table` writes: files named for what they hold, stale ones reported."""
from records import make_record

from harness.cli.commands import main
from harness.record.store import write_record


def test_table_files_are_named_for_what_they_hold_and_stale_ones_are_reported(tmp_path, capsys):
    write_record(tmp_path, make_record("assin2", "big", 1, 90.0, clean=89.0))
    write_record(tmp_path, make_record("assin2", "big", 1, 80.0, clean=79.0, variant="limit200"))
    (tmp_path / "table-published.md").write_text("old numbers")  # the old naming
    assert main(["table", "--results", str(tmp_path)]) == 0
    assert main(["table", "--results", str(tmp_path), "--protocol", "published"]) == 0
    assert main(["table", "--results", str(tmp_path), "--variant", "limit200"]) == 0
    names = sorted(p.name for p in tmp_path.glob("table-*"))
    assert names == ["table-clean-all-variants.md", "table-clean-limit200.md", "table-published-all-variants.md",
                     "table-published.md"]
    everything = (tmp_path / "table-clean-all-variants.md").read_text()
    assert "Variant `default`" in everything and "Variant `limit200`" in everything  # not overwritten by one
    assert "Built from 2 complete records" in everything
    err = capsys.readouterr().err
    assert "table-published.md was written by an older harness" in err

    write_record(tmp_path, make_record("assin2", "big", 2, 91.0, clean=90.0))  # a new run of variant default
    assert main(["table", "--results", str(tmp_path)]) == 0  # refreshes clean-all-variants only
    err = capsys.readouterr().err
    assert "table-published-all-variants.md is stale" in err
    assert "`harness table --protocol published --format markdown`" in err
    assert "table-clean-all-variants.md is stale" not in err and "limit200.md" not in err  # fresh, or untouched


def test_table_default_protocol_is_clean_and_printed(tmp_path, capsys):
    write_record(tmp_path, make_record("assin2", "big", 1, 90.0, clean=88.0))
    assert main(["table", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "protocol `clean`" in out and "88.00" in out and "90.00" not in out
    assert main(["table", "--results", str(tmp_path), "--variant", "nope"]) == 2
    assert "no records of variant 'nope' (found: default)" in capsys.readouterr().err
