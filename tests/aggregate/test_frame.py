"""Results as a DataFrame (harness.results): one row per record x protocol x metric, and its table."""
import json

import pytest
from records import make_record, with_provenance

from harness import results
from harness.cli.commands import main
from harness.record import store
from harness.record.build import failure_record
from harness.record.protocols import DEFAULT_PROTOCOL


@pytest.fixture
def results_dir(tmp_path):
    """Three seeds of two models on two tasks (clean protocol on imdb only), a smoke variant and a failure."""
    folder = tmp_path / "results"
    for seed, (big, small) in enumerate([(93.0, 90.0), (93.2, 90.1), (92.8, 89.9)]):
        store.write_record(folder, with_provenance(make_record("imdb", "bertimbau-large", seed, big, clean=big - 1)))
        store.write_record(folder, with_provenance(make_record("imdb", "ttl-160m", seed, small, clean=small - 2)))
        store.write_record(folder, with_provenance(make_record("assin2", "bertimbau-large", seed, 88.0 + seed)))
        store.write_record(folder, with_provenance(make_record("assin2", "ttl-160m", seed, 86.0 - seed)))
    store.write_record(folder, with_provenance(make_record("imdb", "ttl-160m", 0, 70.0, variant="limit20")))
    from harness.config import RunConfig
    from harness.registry.load import load_models, load_tasks

    failed = failure_record(load_tasks()["imdb"], load_models()["ttl-160m"], RunConfig(), 9, None, "diverged")
    store.write_record(folder, failed)
    return folder


def test_load_gives_one_row_per_record_protocol_and_metric(results_dir):
    df = results.load(results_dir)
    # 12 default records: 6 on imdb with both protocols, 6 on assin2 with published only; plus 1 smoke record.
    # Two metrics each. The failed record has no number, so no row.
    assert len(df) == (6 * 2 + 6 * 1 + 1) * 2
    assert list(df.columns) == results.COLUMNS
    assert set(df.metric) == {"accuracy", "macro_f1"} and set(df.protocol) == {"published", "clean"}
    assert 9 not in set(df.seed)
    row = df[(df.task == "imdb") & (df.model == "ttl-160m") & (df.seed == 1) & (df.protocol == "clean")
             & (df.metric == "accuracy")]
    assert len(row) == 1 and row.value.iloc[0] == pytest.approx(0.881)
    raw = json.loads((results_dir / "imdb" / "ttl-160m" / "default" / "seed1.json").read_text())
    assert row.path.iloc[0].endswith("seed1.json") and row.created_at.iloc[0] == raw["created_at"]
    assert row.model_fingerprint.iloc[0] == "sha256:weights1" and row.precision.iloc[0] == "fp32"
    assert row.data_fingerprint.iloc[0] == "sha256:data1" and row.task_definition_fingerprint.iloc[0].startswith(
        "sha256:")
    # The pandas way to the table's numbers.
    means = df[(df.metric == "accuracy") & (df.protocol == "published") & (df.variant == "default")].groupby(
        ["task", "model"]).value.mean()
    assert means[("imdb", "bertimbau-large")] == pytest.approx(0.93)


def test_load_one_file_and_warn_about_foreign_ones(results_dir):
    one = results.load(results_dir / "imdb" / "ttl-160m" / "limit20" / "seed0.json")
    assert len(one) == 2 and set(one.variant) == {"limit20"}
    bad = results_dir / "imdb" / "ttl-160m" / "default" / "seed7.json"
    bad.write_text("{not json")
    with pytest.warns(UserWarning, match="seed7.json"):
        df = results.load(results_dir)
    assert 7 not in set(df.seed)


@pytest.mark.parametrize("argv", [[], ["--protocol", "clean"], ["--format", "csv"], ["--format", "json"],
                                  ["--format", "latex", "--variant", "limit20", "--protocol", "published"],
                                  ["--suite", "assin", "--protocol", "published"],
                                  ["--suite", "all", "--metric", "macro_f1"],
                                  ["--normalized", "--protocol", "published"], ["--group", "all"]])
def test_table_of_the_dataframe_is_what_the_cli_prints(argv, results_dir, capsys):
    assert main(["table", "--results", str(results_dir), *argv]) == 0
    printed = capsys.readouterr().out
    df = results.load(results_dir)

    def given(flag, default=None):
        return argv[argv.index(flag) + 1] if flag in argv else default

    fmt = given("--format", "markdown")
    if fmt == "markdown":  # the file's footer says what the file was built from; the table is the rest
        printed = printed[:printed.rindex("\n_Built from ")] if "\n_Built from " in printed else printed
    variants = [given("--variant")] if "--variant" in argv else None
    assert results.table(df, protocol=given("--protocol", DEFAULT_PROTOCOL), fmt=fmt, variants=variants,
                         suite=given("--suite"), metric=given("--metric"), normalized="--normalized" in argv,
                         group=given("--group")) == printed
    assert "ttl-160m" in printed.lower()  # not an empty table


def test_table_keeps_the_marks(results_dir):
    text = results.table(results.load(results_dir), protocol="published")
    assert "**93.00 ± 0.50 (n=3)**" in text  # significantly best on IMDB: bold
    assert "| TTL-160m |" in text and "## Variant `limit20`" in text
