"""harness report: one self-contained HTML page of every result (no server, no network).

Per variant: the comparison table of `harness table` (built by table.build_table, with its marks and
legend) for every protocol x metric view, switchable and sortable in the page; it opens as `harness table`
does, on the default protocol (clean) and each task's main metric. Each leaderboard ends with the trivial
baseline as a reference row, each figure draws it as a line: a model at its baseline learned nothing. The
published numbers beside ours; the dot-and-whisker figure; and per cell a detail view (each seed's score,
per-epoch curves, run settings, cost, provenance, record paths relative to the results folder). The statistics
all come from table.py; this module only arranges them. No path of the machine is on the page (it is made
to be shared): the results folder by its name, sources as redact.py names them. Rendered by jinja2 with
autoescaping, CSS/JS/SVG inline.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__
from harness import metrics as metrics_mod
from harness.aggregate import table as tb
from harness.aggregate.groups import groups, precision_of, variant_order
from harness.outputs import plot, table_text
from harness.outputs.report_detail import build_detail, cell_text, detail_id, text_of
from harness.record.protocols import TUNED
from harness.redact import shared_path

# In the order of the page's switches; the first of each is the view the page opens on (`harness table`'s).
PROTOCOLS = {"clean": "epoch picked on validation, test read at that epoch",
             "published": "best epoch picked on the test split, as the paper did"}
# Shown where searches exist (`harness tune`): each cell at its own setting (harness/aggregate/tuned.py).
TUNED_ABOUT = "each cell at the setting its search chose on validation, epoch picked on validation, test at that epoch"
MAIN = "main"  # the view of each task's main metric (what `harness table` shows)
VIEWS = {MAIN: "Main metric", **tb.METRICS}
# How `harness table` shows each mark (to_markdown): bold for best, italic with ≈ for tied, † for untested;
# an undefined cell shows n/a. A mark kind not listed here is still shown, as a tag naming it.
MARK_STYLES = {"best": ("best", ""), "tied": ("tied", "≈"), "untested": ("untested", "†"),
               "undefined": ("undefined", "")}


@dataclass
class CellView:
    col: str
    mean: str = ""
    half: str = ""
    n: int = 0
    sort: str = ""  # the number the column sorts on; empty where there is no result
    mark: str = ""  # the table's mark kind
    mark_class: str = ""
    mark_tag: str = ""
    published: str = ""
    detail: str = ""  # id of the detail view


@dataclass
class View:
    protocol: str
    metric: str
    metric_label: str
    rows: list  # [(model, display, [CellView])]
    legend: object  # Markup
    published_rows: list
    figure: object  # Markup (inline SVG) or None
    caption: str
    heads: list  # [(col, display)]: a column names its metric where the view's columns hold several
    baseline: list  # per column: the trivial baseline as shown ("" where there is none)


@dataclass
class Section:
    id: str
    variant: str
    precision: str  # what its records computed in, e.g. "bf16 (cpu)": sections never pool precisions
    about: str
    columns: list  # [(col, display)] shown
    views: list
    details: list = field(default_factory=list)


def inline_markdown(text: str):
    """The legend's markdown (**bold**, *italic*, `code`) as HTML, escaped first."""
    from markupsafe import Markup, escape

    html = str(escape(text))
    html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
    html = re.sub(r"\*(.+?)\*", r"<em>\1</em>", html)
    html = re.sub(r"`(.+?)`", r"<code>\1</code>", html)
    return Markup(html)


def mark_style(kind: str | None) -> tuple[str, str]:
    if not kind:
        return "", ""
    if kind in MARK_STYLES:
        return MARK_STYLES[kind]
    return "other mark-" + re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-"), kind


def build_view(table: tb.Table, published: dict, columns: list, section_id: str, details: set, shows: str = "",
               baselines: dict | None = None, mains: dict | None = None, note: str | None = None) -> View:
    """shows: the metric view's key (VIEWS; default the table's metric). published: task -> {model: figure} in the
    unit of the task's main metric (as `harness table` gets them), shown where a column shows that metric; mains:
    task -> its main metric (default accuracy, the TTL tasks'). baselines: column -> the trivial baseline in the
    column's units (table.baselines). note: markdown lines shown under the legend (the tuned protocol's searches)."""
    mains = mains or {}
    comparable = {t: refs for t, refs in published.items() if table.score_of(t).metric == mains.get(t, "accuracy")}
    baselines = baselines or {}
    rows = []
    for row in table.rows:
        cells = []
        for col, _ in columns:
            cell = row.cell(col)
            view = CellView(col=col)
            if cell is not None:
                view.mean, view.half = cell_text(cell)
                view.n, view.sort = cell.n, "" if math.isnan(cell.mean) else repr(cell.mean)
                view.mark = table.marks.get((row.model, col), "")
                view.mark_class, view.mark_tag = mark_style(view.mark)
                if (row.model, col) in details:
                    view.detail = detail_id(section_id, row.model, col)
            ref = comparable.get(col, {}).get(row.model)
            view.published = "" if ref is None else f"{ref:.2f}"
            cells.append(view)
        rows.append((row.model, row.display, cells))
    figure, caption = None, ""
    if any(row.cells for row in table.rows):
        from markupsafe import Markup

        figure = Markup(plot.to_svg(plot.tasks_figure(table, comparable, baselines)))
        caption = plot.tasks_caption(table, comparable, baselines)
    from markupsafe import Markup

    legend = inline_markdown(table_text.legend(table, name=str))
    for line in (note or "").splitlines():
        legend += Markup("<br>") + inline_markdown(line)
    names = dict(zip((c for c, _ in table.columns), table_text.column_heads(table), strict=False))
    heads = [(col, names.get(col, display)) for col, display in columns]
    return View(protocol=table.protocol, metric=shows or table.metric, metric_label=_view_label(table), rows=rows,
                legend=legend,
                published_rows=tb.published_rows(table, comparable), figure=figure, caption=caption, heads=heads,
                baseline=["" if baselines.get(col) is None else f"{baselines[col]:.2f}" for col, _ in columns])


def _view_label(table: tb.Table) -> str:
    """What the leaderboard's numbers are, as tables name the metrics ("Macro-F1", not "macro-f1")."""
    scales = table.scales or [table.metric]
    if len(scales) > 1:
        return "scores, each column's metric in its header"
    metric = metrics_mod.METRICS[scales[0]]
    return metric.display + (" (%)" if metric.percent else "")


def _about(records) -> str:
    limits = sorted({r.limit for r in records if r.limit is not None})
    overrides = sorted({f"{k}={text_of(v)}" for r in records for k, v in r.overrides.items()})
    parts = [f"limit {', '.join(map(str, limits))} examples per split" if limits else "full data"]
    parts.append("settings changed: " + ", ".join(overrides) if overrides else "the registered recipe")
    return "; ".join(parts)


def offered_views(records) -> dict:
    """The metric buttons: each task's main metric, and each other metric some record has (a page of regressions
    offers no accuracy)."""
    recorded = {m for r in records for p in r.protocols.values() if p is not None for m in p.test}
    return {k: label for k, label in VIEWS.items() if k == MAIN or k in recorded}


def _scoring(records, view: str, main: dict | None = None) -> dict:
    """task -> what its column shows in a view: in the main view, the task's main metric (main: as `harness
    table` scores it, declared baselines included; else as the records say); in a metric's view, that metric
    where the task records it, else the main metric (a regression has no accuracy: Pearson in every view)."""
    out = {}
    for r in records:
        result = next((p for p in r.protocols.values() if p is not None), None)
        if result is None or r.task.name in out:
            continue
        if view == MAIN or view not in result.test:
            out[r.task.name] = (main or {}).get(r.task.name) or tb.ColumnScore(result.main)
        else:
            out[r.task.name] = tb.ColumnScore(view)
    return out


def build_section(index: int, variant: str, records: list, tasks: list, models: list, published: dict,
                  results: Path, main: dict | None = None, tuned: tuple | None = None,
                  metric_views: dict = VIEWS, precision: str = "") -> Section:
    """tuned: (the tuned cells' records of this variant, their note), where searches exist. metric_views: the
    metrics to build a view of (offered_views)."""
    section_id = f"v{index}"

    def views_of(recs, protocols) -> dict:
        return {(p, v): tb.build_table(recs, p, tasks, models, variant, metric=v if v != MAIN else "accuracy",
                                       scoring=_scoring(recs, v, main))
                for p in protocols for v in metric_views}

    tables = views_of(records, PROTOCOLS)
    tuned_tables = {} if tuned is None else views_of(tuned[0], [TUNED])
    mains = {t: s.metric for t, s in _scoring(records or (tuned or [[]])[0], MAIN, main).items()}
    # Columns any view fills (the CLI shows every registered task; a page hides the empty ones).
    columns = [(c, d) for c, d in [*tasks, ("average", "Average")]
               if any(r.cell(c) is not None for t in [*tables.values(), *tuned_tables.values()] for r in t.rows)]
    by_cell: dict = {}
    for r in records:
        by_cell.setdefault((r.model.name, r.task.name), []).append(r)
    displays = {r.model: r.display for t in tables.values() for r in t.rows}
    task_displays = dict(tasks)
    cells = {key: recs for key, recs in sorted(by_cell.items()) if key[0] in displays and key[1] in task_displays}
    details = [build_detail(section_id, recs, tables, results, displays[m], task_displays[t], metric_views, PROTOCOLS)
               for (m, t), recs in cells.items()]
    views = [build_view(t, published, columns, section_id, set(cells), view, tb.baselines(t, records), mains)
             for (_, view), t in tables.items()]
    # A tuned cell's seeds are another variant's records: no detail view of this section's records behind it.
    views += [build_view(t, published, columns, section_id, set(), view, tb.baselines(t, tuned[0]), mains, tuned[1])
              for (_, view), t in tuned_tables.items()]
    return Section(id=section_id, variant=variant, precision=precision, about=_about(records), columns=columns,
                   views=views, details=details)


def render_report(records, tasks: list, models: list, published: dict, results: Path, tuned=None,
                  main: dict | None = None) -> str:
    """records: complete RunRecords. tasks/models/published: as `harness table` gets them. tuned: the tuned
    protocol's cells (aggregate/tuned.TunedCells) where searches exist: a third protocol in every searched variant.
    main: task -> ColumnScore of its main metric, as `harness table` scores it (default: the records' main metric)."""
    import jinja2

    searched = {s.base_variant for s in tuned.searches} if tuned is not None else set()
    tuned_records = [r for r in tuned.records if r.variant in searched] if tuned is not None else []
    # One section per (variant, precision), as `harness table`: records of two precisions are never pooled.
    found = groups([*records, *tuned_records])
    keys = [(g.variant, g.precision, g.label) for g in found]
    # A searched variant none of whose runs is here still shows its search.
    keys += [(v, "", "") for v in searched - {g.variant for g in found}]
    order = {v: i for i, v in enumerate(variant_order(k[0] for k in keys))}
    keys.sort(key=lambda k: (order[k[0]], k[1]))
    views = offered_views([*records, *tuned_records])
    sections = [build_section(i, v, [r for r in records if r.variant == v and precision_of(r) == p], tasks,
                              models, published, results, main,
                              _tuned_part(tuned, v, p) if v in searched else None, views, label)
                for i, (v, p, label) in enumerate(keys)]
    protocols = {**PROTOCOLS, **({TUNED: TUNED_ABOUT} if searched else {})}
    env = jinja2.Environment(loader=jinja2.PackageLoader("harness", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    commits = sorted({(r.harness.git_commit or "")[:10] + (" (dirty)" if r.harness.git_dirty else "")
                      for r in records} - {""})
    return env.get_template("report.html.j2").render(
        sections=sections, task_names=dict(tasks), protocols=protocols, detail_protocols=PROTOCOLS, views=views,
        metrics=tb.METRICS,
        results=shared_path(results),
        version=__version__,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), commits=commits,
        counts={"runs": len(records), "models": len({r.model.name for r in records}),
                "tasks": len({r.task.name for r in records}), "variants": len(order)})


def _tuned_part(tuned, variant: str, precision: str) -> tuple:
    from harness.outputs.search_text import tuned_note

    return ([r for r in tuned.records if r.variant == variant and (not precision or precision_of(r) == precision)],
            tuned_note(tuned, variant))
