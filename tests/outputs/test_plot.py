"""Figures from the table: whiskers, limits, markers, learning curves."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from records import make_record

from harness.aggregate import table as tb
from harness.cli.commands import main
from harness.errors import UserError
from harness.outputs import plot
from harness.record.store import write_record

TASKS = [("imdb", "IMDB"), ("assin2", "Assin2")]


MODELS = [("three", "Three seeds"), ("one", "One seed")]


def records_for(values: dict):
    """values: (task, model) -> per-seed accuracies."""
    return [make_record(t, m, seed, v) for (t, m), vs in values.items() for seed, v in enumerate(vs)]


@pytest.fixture
def table():
    return tb.build_table(records_for({("imdb", "three"): [90.0, 91.0, 95.0], ("imdb", "one"): [80.0],
                                       ("assin2", "three"): [97.0, 100.0, 99.0], ("assin2", "one"): [88.0]}),
                          "published", TASKS, MODELS)


def panels(fig):
    return {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}


def whiskers(ax):
    """[(mean, row, low, high)] of every error bar in the panel."""
    out = []
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer):
            (x,), (y,) = c.lines[0].get_data()
            (segment,) = c.lines[2][0].get_segments()
            out.append((x, y, segment[:, 0].min(), segment[:, 0].max()))
    return out


def test_whiskers_only_where_there_are_two_seeds_and_as_long_as_the_tables_interval(table):
    fig = plot.tasks_figure(table, {})
    for task, display in TASKS:
        ax = panels(fig)[display]
        three = next(r for r in table.rows if r.model == "three").cells[task]
        ((x, y, low, high),) = whiskers(ax)  # one error bar: the one-seed row has none
        assert (x, y) == (three.mean, 0)
        assert low == pytest.approx(three.mean - three.half) and high == pytest.approx(three.mean + three.half)
        one = next(r for r in table.rows if r.model == "one").cells[task]
        dots = [line for line in ax.lines if line.get_marker() == "o" and list(line.get_ydata()) == [1]]
        assert len(dots) == 1 and list(dots[0].get_xdata()) == [one.mean]
    plt.close(fig)


def test_limits_hold_every_whisker_even_past_100(table):
    fig = plot.tasks_figure(table, {})
    for ax in panels(fig).values():
        left, right = ax.get_xlim()
        for _, _, low, high in whiskers(ax):
            assert left <= low and high <= right
    assets = panels(fig)["Assin2"]
    assert whiskers(assets)[0][3] > 100  # 97, 100, 99: the interval reaches past 100 and is not cut
    assert assets.get_xlim()[0] > 50  # dots, not bars: the axis need not start at 0


def test_published_values_are_their_own_markers(table):
    fig = plot.tasks_figure(table, {"imdb": {"one": 85.5}})
    ax = panels(fig)["IMDB"]
    diamonds = [line for line in ax.lines if line.get_marker() == "D"]
    assert len(diamonds) == 1 and list(diamonds[0].get_data()[0]) == [85.5] and list(diamonds[0].get_data()[1]) == [1]
    assert diamonds[0].get_markerfacecolor() == "none"
    assert ax.get_xlim()[0] <= 80.0 and ax.get_xlim()[1] >= 95.0
    assert not [line for line in panels(fig)["Assin2"].lines if line.get_marker() == "D"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["ours: mean ± 95% t-interval over seeds (n ≥ 2)", "ours: one seed (no interval)", "published"]


def test_legend_and_titles_fit_and_stay_off_the_plots():
    long_variant = "epochs=2_learning_rate=2e-05_limit300_warmup_ratio=0.1_weight_decay=0.05"
    records = [make_record(t, m, s, 80 + i + s, variant=long_variant)
               for i, (t, m) in enumerate([(t, m) for t, _ in TASKS for m, _ in MODELS]) for s in range(2)]
    table = tb.build_table(records, "published", TASKS,
                           [("three", "A model with a rather long display name"), ("one", "One")], long_variant)
    fig = plot.tasks_figure(table, {"imdb": {"one": 90.0}})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox
    legend = fig.legends[0].get_window_extent(renderer)
    titles = [fig._suptitle] + [ax.title for ax in fig.axes]
    for ax in fig.axes:
        assert not legend.overlaps(ax.get_window_extent(renderer))  # the legend is outside every plotting area
    for title in titles:
        assert not legend.overlaps(title.get_window_extent(renderer))  # and covers no title
    for box in [legend] + [t.get_window_extent(renderer) for t in titles]:
        assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1 and figure_box.y0 <= box.y0 <= box.y1 <= \
            figure_box.y1
    assert "variant " + long_variant in fig._suptitle.get_text().replace("\n", " ")
    plt.close(fig)


def test_caption_names_the_interval_only_when_one_is_drawn(table):
    assert "whiskers: 95% t-interval over seeds" in plot.tasks_caption(table, {})
    single = tb.build_table(records_for({("imdb", "one"): [80.0]}), "published", TASKS, MODELS)
    assert "no interval" in plot.tasks_caption(single, {}) and "whiskers" not in plot.tasks_caption(single, {})
    assert "diamonds" in plot.tasks_caption(single, {"imdb": {"one": 1.0}})
    assert "diamonds" not in plot.tasks_caption(single, {"assin2": {"one": 1.0}})
    fig = plot.tasks_figure(single, {})
    assert whiskers(panels(fig)["IMDB"]) == [] and "Assin2" not in panels(fig)  # a task without results: no panel


def test_a_dollar_in_a_name_is_text_not_math():
    table = tb.build_table(records_for({("imdb", "m"): [80.0]}), "published", TASKS, [("m", "US$ 5 model $x$")])
    fig = plot.tasks_figure(table, {})
    fig.canvas.draw()
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [r"US\$ 5 model \$x\$"]
    assert "US$ 5 model $x$" in plot.to_svg(fig)


def test_learning_curves_hold_every_seeds_epochs():
    rng = np.random.default_rng(1)
    records = []
    for seed in (1, 2):
        r = make_record("imdb", "m", seed, 80.0)
        epoch = r.fits[0].epochs[0]
        split = type(epoch.test)
        r.fits[0].epochs = [type(epoch)(epoch=e, train_loss=0.5,
                                        test=split({"accuracy": rng.random(), "macro_f1": rng.random()}, 0.5),
                                        validation=split({"accuracy": rng.random(), "macro_f1": rng.random()}, 0.5))
                            for e in (1, 2, 3)]
        records.append(r)
    fig = plot.curves_figure(records)
    accuracy, f1 = fig.axes
    for ax, metric in ((accuracy, "accuracy"), (f1, "macro_f1")):
        series = [list(line.get_ydata()) for line in ax.lines if len(line.get_xdata()) == 3]
        for r in records:
            test = [100 * e.test.metrics[metric] for e in r.fits[0].epochs]
            val = [100 * e.validation.metrics[metric] for e in r.fits[0].epochs]
            assert test in series and val in series
        assert ax.get_title() == tb.METRICS[metric]


def test_a_regression_record_plots_and_reports(tmp_path):
    """A task whose main metric is not accuracy: the figures show its main metric (Pearson), the report renders."""
    from harness.outputs.report import render_report

    gold = [1.0, 2.0, 3.0, 4.0, 5.0, 2.5]
    records = [make_record("sts", m, s, 0, gold=gold, preds=gold, task_type="regression", main="pearson",
                           test={"pearson": p + s / 100, "spearman": p, "mse": 0.5})
               for m, p in (("a", 0.8), ("b", 0.6)) for s in (1, 2)]
    scoring = {"sts": tb.ColumnScore("pearson")}
    table = tb.build_table(records, "published", [("sts", "STS")], [("a", "A"), ("b", "B")], scoring=scoring)
    fig = plot.tasks_figure(table, {})
    assert "pearson" in fig._suptitle.get_text().lower()
    curves = plot.curves_figure([r for r in records if r.model.name == "a"])
    assert [ax.get_title() for ax in curves.axes] == ["Pearson", "Spearman"]
    html = render_report(records, [("sts", "STS")], [("a", "A"), ("b", "B")], {}, tmp_path)
    assert "STS" in html and "80.50" in html  # a's mean Pearson over seeds 1 and 2, x100
    plt.close(fig)


def test_harness_plot_writes_the_dot_figure(tmp_path, capsys):
    from harness.cli.commands import main
    from harness.record.store import write_record

    for s, v in enumerate([88.0, 89.0, 87.5]):
        write_record(tmp_path, make_record("assin2", "bertimbau-base", s, v))
    assert main(["plot", "--results", str(tmp_path), "--metric", "macro_f1", "--protocol", "published"]) == 0
    png = tmp_path / "plot-published-default-macro_f1.png"
    assert capsys.readouterr().out.strip() == str(png) and png.read_bytes()[:4] == b"\x89PNG"


def test_a_plot_that_cannot_be_written_is_one_line(tmp_path):
    pytest.importorskip("matplotlib")
    from harness.outputs.plot import _pyplot, save_png

    (tmp_path / "a-file").write_text("")
    fig = _pyplot().figure()
    with pytest.raises(UserError, match=r"cannot write the plot to '.*a-file/x.png': .*; pass --output FILE"):
        save_png(fig, tmp_path / "a-file" / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_plot_writes_a_png(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for model, base in (("bertimbau-base", 88.0), ("ttl-160m", 86.0)):
        for s in range(3):
            acc = base + rng.normal(0, 0.5)
            write_record(tmp_path, make_record("assin2", model, s, acc, clean=acc))
    assert main(["plot", "--results", str(tmp_path)]) == 0
    png = tmp_path / "plot-clean-default.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_each_panel_draws_the_trivial_baseline_and_its_axis_includes_it(table):
    """A line where a predictor that never reads the text scores; the axis always reaches it, so a model at
    its baseline is seen to be there."""
    baselines = {"imdb": 50.0, "assin2": 70.0}
    fig = plot.tasks_figure(table, {}, baselines)
    for task, display in TASKS:
        ax = panels(fig)[display]
        lines = [ln for ln in ax.lines if ln.get_linestyle() == "--" and set(ln.get_xdata()) == {baselines[task]}]
        assert len(lines) == 1
        low, high = ax.get_xlim()
        assert low <= baselines[task] < 80.0 <= high  # the baseline and the lowest dot (one seed at 80, 88)
    assert "trivial baseline (reads no text)" in [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)
    assert "dashed line: the trivial baseline" in plot.tasks_caption(table, {}, baselines)


def test_an_axis_spans_enough_that_noise_is_not_drawn_as_a_gap():
    """One dot at 29.1, on its baseline, once got an axis from 28.25 to 30.00: a hundredth of a point looked
    like a gap. An axis of a % metric spans at least MIN_SPAN points, inside 0-100 where that cuts nothing."""
    accuracy = tb.ColumnScore("macro_f1")
    low, high = plot.x_limits([29.1, 29.14], accuracy)
    assert high - low >= plot.MIN_SPAN and low < 29.1 and 29.14 < high
    assert plot.x_limits([1.0, 2.0], accuracy)[0] == 0.0 and plot.x_limits([99.0, 100.0], accuracy)[1] == 100.0
    low, high = plot.x_limits([0.47, 0.76], tb.ColumnScore("mse"))  # a metric in its own units: no 0-100 frame
    assert low < 0.47 and 0.76 < high < 1.0
