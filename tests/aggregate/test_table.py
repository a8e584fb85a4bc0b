"""The comparison table: cells over seeds, the Average, marks, published figures against prediction intervals."""
import json

import pytest
from records import make_record

from harness.aggregate import table as tb
from harness.cli.commands import main
from harness.outputs import table_text as tt
from harness.record.store import write_record

TASKS = [("imdb", "IMDB"), ("assin2", "Assin2")]


MODELS = [("big", "Big"), ("small", "Small")]


def _records(model, task, values, seeds=None, **kwargs):
    seeds = seeds or range(len(values))
    return [make_record(task, model, s, v, **kwargs) for s, v in zip(seeds, values, strict=True)]


def test_golden_markdown_single_seed():
    """One seed per cell: no test is possible, so the highest is marked † (untested), never bold, and every
    other cell ≈: none is shown to be worse (before #22, one-seed cells got no mark although the legend said
    every cell not shown to differ is ≈)."""
    records = [make_record("imdb", "big", 42, 93.0), make_record("assin2", "big", 42, 88.0),
               make_record("imdb", "small", 42, 92.0), make_record("assin2", "small", 42, 89.5),
               make_record("imdb", "extra", 42, 50.0, display="Extra")]
    table = tb.build_table(records, "published", TASKS, MODELS)
    assert tt.to_markdown(table) == (
        "| Models | IMDB | Assin2 | Average |\n"
        "|--------|------|--------|---------|\n"
        "| Big | 93.00 † | *88.00* ≈ | *90.50* ≈ |\n"
        "| Small | *92.00* ≈ | 89.50 † | 90.75 † |\n"
        "| Extra | *50.00* ≈ | – | – |"
    )
    legend = tt.legend(table)
    assert "†: the column's best, better than every cell it could be tested against, but not bold" in legend
    assert "Bold" not in legend and "one seed" in legend


def test_several_seeds_bold_only_when_significant():
    recs = []
    for seed, (b, s) in enumerate([(93.0, 90.0), (93.2, 90.1), (92.8, 89.9)]):
        recs += [make_record("imdb", "big", seed, b), make_record("imdb", "small", seed, s)]
    for seed, (b, s) in enumerate([(88.0, 88.5), (89.0, 87.5), (87.0, 88.2)]):
        recs += [make_record("assin2", "big", seed, b), make_record("assin2", "small", seed, s)]
    table = tb.build_table(recs, "published", TASKS, MODELS)
    assert table.marks[("big", "imdb")] == "best"  # 93.0 vs 90.0 with tiny spread
    assert table.marks[("small", "assin2")] == "tied" and table.marks[("big", "assin2")] == "tied"
    big = table.rows[0]
    assert big.cells["imdb"].n == 3 and round(big.cells["imdb"].half, 3) == 0.497  # t(.975,2)*0.2/sqrt(3)
    assert big.average.n == 3 and abs(big.average.mean - 90.5) < 1e-9
    md = tt.to_markdown(table)
    assert "**93.00 ± 0.50 (n=3)**" in md and "*88.07 ± 1.27 (n=3)* ≈" in md  # sd 0.513 by hand
    legend = tt.legend(table)
    assert "**Bold**: significantly better than every other cell of its column (two-sided, p < 0.05" in legend
    assert "Welch's t-test" in legend and "seed-aware" not in legend and "†" not in legend  # no predictions here


def test_the_average_is_the_mean_of_the_task_means_and_keeps_every_seed():
    """#22 item 2: X ran imdb on seeds 1-3, assin2 on 1-2. The old Average kept only the seeds every task has
    (1, 2: 85.00) and made X look worse than its own cells (83.00 and 90.00, mean 86.50). The Average now shows
    the mean of the numbers in its row, its interval adds the per-task seed variances over T² (Welch-
    Satterthwaite), and X's wide imdb spread makes X vs Y (86.25) a tie. Catches: the per-seed average over
    common seeds (85.00), an interval from one task only."""
    recs = _records("x", "imdb", [80.0, 80.0, 89.0], [1, 2, 3]) + _records("x", "assin2", [90.0, 90.0], [1, 2])
    recs += _records("y", "imdb", [86.0, 86.1, 86.0], [1, 2, 3]) + _records("y", "assin2", [86.5, 86.5, 86.4],
                                                                                [1, 2, 3])
    table = tb.build_table(recs, "published", TASKS, [("x", "X"), ("y", "Y")])
    x, y = table.rows
    for row in (x, y):
        assert row.average.mean == pytest.approx(sum(c.mean for c in row.cells.values()) / 2)
    assert x.average.mean == pytest.approx(86.5) and y.average.mean == pytest.approx(86.25)
    # variance: imdb s² = 27 over 3 seeds, assin2 none: (27 / 3) / 2² = 2.25; one component: t(2 dof)
    assert x.average.half == pytest.approx(4.302652729911275 * 2.25 ** 0.5) and x.average.n == 2
    assert table.marks[("x", "average")] == "tied" and table.marks[("y", "average")] == "tied"
    md = tt.to_markdown(table)
    # X's imdb is not shown to be worse than Y's (its spread is wide): ≈ too
    assert "| X | *83.00 ± 12.91 (n=3)* ≈ | **90.00 ± 0.00 (n=2)** | *86.50 ± 6.45 (n=2)* ≈ |" in md


def test_a_one_seed_runner_up_leaves_the_best_untested():
    """90.17 ± 12.44 (n=3) over 90.00 (n=1): no test is possible, so no bold; the mark and legend say so."""
    recs = _records("big", "imdb", [85.17, 90.17, 95.17]) + _records("small", "imdb", [90.0])
    table = tb.build_table(recs, "published", TASKS, MODELS)
    assert table.marks == {("big", "imdb"): "untested", ("small", "imdb"): "tied"}
    assert "| Big | 90.17 ± 12.42 (n=3) † | – | – |" in tt.to_markdown(table)
    assert "a cell beside it cannot be tested (one seed" in tt.legend(table)
    # the same with the one seed on the best
    recs = _records("big", "imdb", [91.0]) + _records("small", "imdb", [85.0, 90.0, 95.0])
    assert tb.build_table(recs, "published", TASKS, MODELS).marks == {("big", "imdb"): "untested",
                                                                      ("small", "imdb"): "tied"}


def test_a_lone_model_is_not_marked_above_anyone():
    recs = _records("big", "imdb", [93.0, 93.5, 92.5]) + _records("big", "assin2", [80.0, 81.0, 79.0])
    table = tb.build_table(recs, "published", TASKS, MODELS)
    assert table.marks == {}
    assert "**" not in tt.to_markdown(table)
    assert "A column with one model has no mark (IMDB, Assin2, Average)." in tt.legend(table)


def test_exact_ties_with_one_seed_are_ties():
    recs = _records("big", "imdb", [90.0]) + _records("small", "imdb", [90.0]) + _records("extra", "imdb", [89.0])
    table = tb.build_table(recs, "published", TASKS, MODELS)
    # the same number is a tie without a test; extra cannot be tested: not shown to be worse either
    assert table.marks == {("big", "imdb"): "tied", ("small", "imdb"): "tied", ("extra", "imdb"): "tied"}
    assert "| Big | *90.00* ≈ |" in tt.to_markdown(table) and "†" not in tt.legend(table)


def test_not_significant_marks_every_cell_not_shown_to_differ():
    recs = (_records("big", "imdb", [90.0, 91.0, 89.0]) + _records("small", "imdb", [89.5, 90.5, 88.5])
            + _records("extra", "imdb", [80.0, 80.1, 79.9]) + _records("lone", "imdb", [89.0]))
    table = tb.build_table(recs, "published", TASKS, MODELS)
    # small: not significantly below; extra: significantly below, no mark; lone (one seed): not testable, ≈
    assert table.marks == {("big", "imdb"): "tied", ("small", "imdb"): "tied", ("lone", "imdb"): "tied"}


def test_the_average_needs_every_task_not_shared_seeds():
    """Before #22 a row whose tasks shared no seed had no Average; now its Average is the mean of its task means."""
    recs = _records("big", "imdb", [90.0, 91.0], [1, 2]) + _records("big", "assin2", [80.0, 81.0], [3, 4])
    table = tb.build_table(recs, "published", TASKS, MODELS)
    assert table.rows[0].average.mean == pytest.approx(85.5)
    assert tt.to_markdown(table).endswith("| 85.50 ± 1.52 (n=2) |")  # t(2 dof) * sqrt((0.5/2 + 0.5/2) / 4)


def test_row_missing_a_task_has_no_average_and_protocol_matters():
    recs = [make_record("imdb", "big", 1, 90.0, clean=88.0)]
    table = tb.build_table(recs, "clean", TASKS, MODELS)
    assert table.rows[0].cells["imdb"].mean == 88.0 and table.rows[0].average is None
    assert tb.build_table([make_record("imdb", "big", 1, 90.0)], "clean", TASKS, MODELS).rows == []


def test_published_comparison_uses_a_prediction_interval_for_one_run():
    recs = _records("big", "imdb", [91.0, 91.2, 90.8]) + _records("small", "imdb", [91.0, 92.0, 90.0])
    recs += _records("big", "assin2", [88.0])
    table = tb.build_table(recs, "published", TASKS, MODELS)
    rows = {(r["model"], r["task"]): r for r in tb.published_rows(table, {"imdb": {"big": 93.58, "small": 94.0},
                                                                           "assin2": {"big": 87.0}})}
    big = rows[("big", "imdb")]  # sd 0.2: prediction half 4.3027 * 0.2 * sqrt(4/3) = 0.994
    assert big["prediction_half"] == pytest.approx(4.302652729911275 * 0.2 * (4 / 3) ** 0.5)
    assert big["published_inside_prediction"] is False and big["difference"] == pytest.approx(91.0 - 93.58)
    small = rows[("small", "imdb")]  # sd 1: outside the CI of the mean (91 ± 2.48), inside the PI (91 ± 4.97)
    assert small["half"] == pytest.approx(2.484, abs=1e-3) and small["published_inside_prediction"] is True
    one = rows[("big", "assin2")]
    assert one["prediction_half"] is None and one["published_inside_prediction"] is None
    md = tt.published_markdown(list(rows.values()))
    assert "| Big | imdb | 93.58 | 91.00 ± 0.50 (n=3) | -2.58 | 90.01 – 91.99 | **no** |" in md
    assert "| Big | assin2 | 87.00 | 88.00 (n=1) | +1.00 | none (1 seed) | n/a |" in md


def test_exports_say_variant_protocol_and_precision():
    recs = [make_record("imdb", "big", 1, 90.0), make_record("assin2", "big", 1, 80.0)]
    table = tb.build_table(recs, "published", TASKS, MODELS, precision="fp32 (cpu)")
    csv_text = tt.to_csv(table)
    assert csv_text.splitlines()[0] == "variant,protocol,precision,model,column,mean,ci95_half,n,mark"
    assert "default,published,fp32 (cpu),big,average,85.0000,,1," in csv_text
    latex = tt.to_latex(table)
    assert latex.startswith("% variant `default`, protocol `published`, precision fp32 (cpu)")
    body, legend = latex.split(r"\end{tabular}")
    assert r"\textbf" not in body and legend.strip().startswith(r"\par\smallskip{\footnotesize Accuracy (\%) on test")
    obj = json.loads(json.dumps(tt.to_json_obj(table, [])))
    assert obj["rows"][0]["average"]["mean"] == 85.0 and obj["precision"] == "fp32 (cpu)"
    assert "protocol *published*" in obj["legend"]


def test_table_never_pools_precisions(tmp_path, capsys):
    for s, v in enumerate([90.0, 90.5]):
        write_record(tmp_path, make_record("assin2", "big", s, v, clean=v, precision="fp32", device_type="cpu"))
    for s, v in enumerate([85.0, 85.5], start=2):
        write_record(tmp_path, make_record("assin2", "big", s, v, clean=v, precision="bf16", device_type="cuda"))
    write_record(tmp_path, make_record("assin2", "big", 9, 70.0, clean=70.0, precision=None))
    assert main(["table", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    sections = out.split("## ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        "Variant `default`, protocol `clean`, precision bf16 (cuda)",
        "Variant `default`, protocol `clean`, precision fp32 (cpu)",
        "Variant `default`, protocol `clean`, precision unrecorded (records written before the harness recorded it)"]
    assert "85.25 ± 3.18 (n=2)" in sections[0] and "90.25 ± 3.18 (n=2)" in sections[1] and "(n=4)" not in out


def test_records_written_before_the_precision_field_still_read():
    from harness.record.serialize import from_dict, to_json

    data = json.loads(to_json(make_record("assin2", "big", 1, 90.0)))
    assert (data["precision"], data["device_type"]) == ("fp32", "cpu")
    del data["precision"], data["device_type"]
    back = from_dict(data)
    assert (back.precision, back.device_type) == (None, None)


def test_a_registered_task_nobody_ran_is_no_column_and_keeps_the_average(tmp_path, capsys):
    """A new task in the registry must not take the Average away from rows that have every task run."""
    for task, value in (("imdb", 93.0), ("assin2", 88.0)):
        write_record(tmp_path, make_record(task, "ttl-160m", 1, value, clean=value))
    assert main(["table", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| Models | IMDB | Assin2 | Average |" in out and "| 90.50" in out


def test_the_metric_is_a_parameter_of_the_table():
    recs = [make_record("imdb", "big", s, 90.0 + s) for s in (1, 2)]
    for r in recs:
        r.protocols["published"].test["macro_f1"] = 0.7 + r.seed / 100
    table = tb.build_table(recs, "published", TASKS, MODELS, metric="macro_f1")
    assert table.rows[0].cells["imdb"].values == pytest.approx([71.0, 72.0]) and table.metric == "macro_f1"
    assert tt.legend(table).startswith("Macro-F1 (%) on test")
    assert tb.build_table(recs, "published", TASKS, MODELS).rows[0].cells["imdb"].values == pytest.approx([91.0, 92.0])
    with pytest.raises(ValueError, match="unknown metric"):
        tb.build_table(recs, "published", TASKS, MODELS, metric="f2")
