"""Figures from the same Table that `harness table` prints (no statistics of their own).

- tasks_figure: per task, one dot per model (mean over seeds) with a whisker for the 95% t-interval
  only where there are at least 2 seeds, the published number as a hollow diamond, and the trivial
  baseline (what a predictor that never reads the text scores) as a dashed line that the axis always
  includes: a dot on it learned nothing. Dots, not bars: a bar's length means something only from zero,
  and a zero baseline hides the differences; the axis spans at least MIN_SPAN points, so that noise is not
  drawn as a gap.
- curves_figure: one cell's per-epoch test (solid) and validation (dashed) scores, one line per seed,
  with the epoch each protocol picked.
`harness plot` writes tasks_figure as PNG; `harness report` inlines both as SVG.
"""
from __future__ import annotations

import io
import math
import re
import textwrap
from pathlib import Path

from harness import metrics as mt
from harness.aggregate.table import METRICS, Table
from harness.errors import UserError

INTERVAL = "95% t-interval over seeds"
OURS = "#2563eb"
PUBLISHED = "#111827"
BASELINE = "#9ca3af"
PANELS_PER_ROW = 5
MIN_SPAN = 10.0  # points (of a % metric) an axis spans at least; a metric in its own units: a tenth of its size


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("figures need matplotlib: pip install 'poeta-harness[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plain(text: str, width: int | None = None) -> str:
    """A label shown as written: '$' would start matplotlib's math mode; long names are wrapped."""
    text = str(text)
    if width:
        text = "\n".join(textwrap.wrap(text, width)) or text
    return text.replace("$", r"\$")


def _panels(table: Table) -> list:
    """The tasks with a result: one panel each."""
    return [(t, d) for t, d in table.task_columns if any(t in r.cells for r in table.rows)]


def tasks_caption(table: Table, published: dict, baselines: dict | None = None) -> str:
    several = any(c.n >= 2 for r in table.rows for c in r.cells.values())
    text = "Dots: mean over seeds"
    text += f"; whiskers: {INTERVAL}, drawn only where a cell has at least 2 seeds" if several else \
        "; one seed per cell, so no interval is drawn"
    if any(published.get(t, {}).get(r.model) is not None for t, _ in _panels(table) for r in table.rows):
        text += "; hollow diamonds: the published numbers"
    if baselines:
        text += ("; dashed line: the trivial baseline, what a predictor that never reads the text scores (a dot "
                 "on it learned nothing)")
    return text + "."


def tasks_figure(table: Table, published: dict, baselines: dict | None = None):
    """published: task -> {model: value}, on the table's metric (pass {} where none is comparable); baselines:
    task -> the trivial baseline in the column's units (aggregate.table.baselines), drawn as a line."""
    plt = _pyplot()
    columns = _panels(table)
    if not columns:
        raise UserError("nothing to plot: no task has a result")
    rows = [r for r in table.rows if any(t in r.cells for t, _ in columns)]
    ncols = min(len(columns), PANELS_PER_ROW)
    nrows = math.ceil(len(columns) / ncols)
    width = 1.8 + 2.5 * ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 1.0 + nrows * (0.8 + 0.42 * len(rows))),
                             sharey=True, squeeze=False, layout="constrained")
    handles = {}
    for ax, (task, display) in zip(axes.flat, columns, strict=False):  # spare panels hidden below
        _draw_panel(ax, table, task, display, rows, published, handles, (baselines or {}).get(task))
    for ax in list(axes.flat)[len(columns):]:
        ax.set_visible(False)
    axes[0][0].set_ylim(len(rows) - 0.4, -0.6)  # first row on top; shared by every panel
    axes[0][0].set_yticks(range(len(rows)), [plain(r.display, 22) for r in rows], fontsize=9)
    order = [handles[k] for k in ("interval", "single", "published", "baseline") if k in handles]
    # One row where the panels leave room for it; a narrow figure (one or two panels) stacks the entries.
    fig.legend([h for h, _ in order], [label for _, label in order], loc="outside lower center",
               ncols=len(order) if ncols >= 3 else 1, fontsize=8, frameon=False)
    scales = table.scales or [table.metric]
    what = ("each task's main metric" if len(scales) > 1 else "normalized score (%)" if scales == ["normalized"]
            else mt.METRICS[scales[0]].display + (" (%)" if mt.METRICS[scales[0]].percent else ""))
    title = f"Test {what} per task · protocol {table.protocol} · variant {table.variant}"
    fig.suptitle(plain(title, int(width * 11)), fontsize=11)  # about 11 characters an inch at 11 pt
    return fig


def _draw_panel(ax, table: Table, task: str, display: str, rows: list, published: dict, handles: dict,
                baseline: float | None = None) -> None:
    """One task's panel: per row, our dot (with its interval where there is one) and the published diamond; the
    trivial baseline as a line across. handles: legend entries, filled in as the kinds of mark first appear."""
    xs = []
    if baseline is not None:
        h = ax.axvline(baseline, color=BASELINE, ls="--", lw=1.3, zorder=1)
        handles.setdefault("baseline", (h, "trivial baseline (reads no text)"))
        xs.append(baseline)
    for i, row in enumerate(rows):
        cell = row.cells.get(task)
        if cell is not None:
            if cell.n >= 2 and cell.half is not None:
                h = ax.errorbar(cell.mean, i, xerr=cell.half, fmt="o", color=OURS, ms=6, capsize=3, lw=1.4,
                                zorder=3)
                handles.setdefault("interval", (h, f"ours: mean ± {INTERVAL} (n ≥ 2)"))
                xs += [cell.mean - cell.half, cell.mean + cell.half]
            else:
                (h,) = ax.plot([cell.mean], [i], "o", color=OURS, ms=6, mfc="white", mew=1.6, zorder=3)
                handles.setdefault("single", (h, "ours: one seed (no interval)"))
                xs.append(cell.mean)
            ax.annotate(f"{cell.mean:.1f}", (cell.mean, i), xytext=(0, 5), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, color="#374151")
        ref = published.get(task, {}).get(row.model)
        if ref is not None:
            # Larger and hollow, under our dot: where the two coincide the dot shows inside the diamond.
            (h,) = ax.plot([ref], [i], "D", ms=9, mfc="none", mec=PUBLISHED, mew=1.3, ls="none", zorder=2)
            handles.setdefault("published", (h, "published"))
            xs.append(ref)
    ax.set_xlim(*x_limits(xs, table.score_of(task)))
    if len(table.scales) > 1:  # the columns hold different metrics: each panel names its own
        display = f"{display} ({mt.METRICS[table.score_of(task).metric].display})"
    ax.set_title(plain(display, 24), fontsize=10)
    ax.grid(axis="x", color="#e5e7eb", lw=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def x_limits(xs: list[float], score) -> tuple[float, float]:
    """An axis around the values (dots, whiskers, diamonds, the baseline), within 0-100 for a % metric where that
    cuts nothing off, and at least MIN_SPAN wide: one dot at 29.1 gets 24-34, not 28.3-30, which would draw a
    hundredth of a point as a gap."""
    percent = score.normalized or mt.METRICS[score.metric].percent
    low, high = min(xs), max(xs)
    span = MIN_SPAN if percent else max(abs(low), abs(high), 1e-9) / 10
    pad = max(0.12 * (high - low), (span - (high - low)) / 2, 0.0)
    low, high = low - pad, high + pad
    if percent:  # slide the window back inside 0-100, never past the data
        shift = max(0.0, min(0.0 - low, min(xs) - low)) - max(0.0, min(high - 100.0, high - max(xs)))
        low, high = low + shift, high + shift
    return low, high


def curves_figure(records, metrics=None):
    """records: one cell's records (same task, model and variant), any number of seeds. metrics: the panels
    (default: accuracy and macro-F1 where recorded, else the task's first two metrics)."""
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    records = sorted(records, key=lambda r: r.seed)
    recorded = list(next((e.test.metrics for r in records for f in r.fits for e in f.epochs), {}))
    metrics = metrics or ([m for m in METRICS if m in recorded] or recorded[:2])

    def val(split, metric):
        return mt.shown(metric, split.metrics[metric])

    kinds = list(dict.fromkeys(f.train_set for r in records for f in r.fits))
    fig, axes = plt.subplots(len(kinds), len(metrics), figsize=(2.2 + 3.0 * len(metrics), 0.6 + 2.3 * len(kinds)),
                             squeeze=False, layout="constrained")
    colors = plt.get_cmap("tab10")
    picks = {name: (r.seed, p.fit, p.epoch) for r in records for name, p in r.protocols.items() if p}
    for k, kind in enumerate(kinds):
        for m, metric in enumerate(metrics):
            ax = axes[k][m]
            for s, record in enumerate(records):
                for f, fit in enumerate(record.fits):
                    if fit.train_set != kind:
                        continue
                    epochs = [e.epoch for e in fit.epochs]
                    color = colors(s % 10)
                    ax.plot(epochs, [val(e.test, metric) for e in fit.epochs], "-o", ms=3, lw=1.4,
                            color=color, label=f"seed {record.seed}")
                    if all(e.validation is not None for e in fit.epochs):
                        ax.plot(epochs, [val(e.validation, metric) for e in fit.epochs], "--.", lw=1.2,
                                color=color)
                    for name, p in record.protocols.items():
                        if p is not None and p.fit == f:
                            e = next(e for e in fit.epochs if e.epoch == p.epoch)
                            ax.plot([p.epoch], [val(e.test, metric)], "^" if name == "published" else "s",
                                    ms=8, mfc="none", mec="#111827", mew=1.1, zorder=4)
            title = mt.METRICS[metric].display + ("" if len(kinds) == 1 else f", fit on {kind}")
            ax.set_title(plain(title, 40), fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            last = max((len(f.epochs) for r in records for f in r.fits), default=1)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlim(0.7, last + 0.3)
            ax.tick_params(labelsize=8)
            ax.grid(color="#e5e7eb", lw=0.8)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
    axes[0][0].set_ylabel("score (%)" if all(mt.METRICS[m].percent for m in metrics) else "score", fontsize=8)
    seeds = [Line2D([], [], color=colors(s % 10), lw=1.4, label=f"seed {r.seed}") for s, r in enumerate(records)]
    styles = [Line2D([], [], color="#6b7280", lw=1.4, label="test"),
              Line2D([], [], color="#6b7280", lw=1.2, ls="--", label="validation")]
    styles += [Line2D([], [], ls="none", marker="^" if name == "published" else "s", ms=7, mfc="none", mec="#111827",
                      label=f"picked ({name})") for name in ("published", "clean") if name in picks]
    fig.legend(handles=seeds + styles, loc="outside right upper", fontsize=7, frameon=False)
    return fig


def save_png(fig, path: Path) -> Path:
    plt = _pyplot()
    tmp = path.with_name("." + path.name + ".tmp.png")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, dpi=130)
        tmp.replace(path)
    except OSError as exc:  # a read-only or missing place, a full disk: the user's to fix, in one line
        raise UserError(f"cannot write the plot to '{path}': {exc.strerror or exc}; pass --output FILE") from None
    finally:
        plt.close(fig)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # nothing was written there
    return path


def to_svg(fig) -> str:
    """The figure as an <svg> element to inline in HTML: text kept as text (small, selectable), no date."""
    plt = _pyplot()
    import matplotlib

    buf = io.StringIO()
    try:
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    text = buf.getvalue()
    svg = text[text.index("<svg"):]
    # Drawn at up to 1.4 times matplotlib's size (its 7-10 pt labels read small on a screen), never wider than
    # the page; the viewBox keeps the proportions.
    head = re.match(r'<svg[^>]*?\swidth="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if head:
        width = float(head.group(1))
        svg = svg.replace(head.group(0), head.group(0).replace(
            f'width="{head.group(1)}pt" height="{head.group(2)}pt"',
            f'width="100%" style="max-width: {1.4 * width:.0f}pt"'), 1)
    return svg


def plot_table(table: Table, published: dict, path: Path, baselines: dict | None = None) -> Path:
    return save_png(tasks_figure(table, published, baselines), path)
