"""harness report: one self-contained HTML page of every result (no server, no network).

Per variant: the comparison table of `harness table` (built by table.build_table, with its marks and
legend) for every protocol x metric, switchable and sortable in the page; the published numbers
beside ours; the dot-and-whisker figure; and per cell a detail view (each seed's score, per-epoch
curves, run settings, cost, provenance, record paths). The statistics all come from table.py; this
module only arranges them. Rendered by jinja2 with autoescaping, CSS/JS/SVG inline.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__
from harness.aggregate import table as tb
from harness.outputs import plot, table_text
from harness.record.protocols import TUNED
from harness.record.store import record_path

PROTOCOLS = {"published": "best epoch picked on the test split, as the paper did",
             "clean": "epoch picked on validation, test read at that epoch"}
# Shown where searches exist (`harness tune`): each cell at its own setting (harness/aggregate/tuned.py).
TUNED_ABOUT = "each cell at the setting its search chose on validation, epoch picked on validation, test at that epoch"
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


@dataclass
class Detail:
    id: str
    model: str
    task: str
    scores: list  # [(protocol, metric label, "mean ± half (n)")]
    seeds: list  # per seed: dict
    curves: object  # Markup
    settings: list  # [(key, value, overridden)]
    cost: list  # per seed: dict
    provenance: list  # [(key, value)]


@dataclass
class Section:
    id: str
    variant: str
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


def _cell_text(cell: tb.Score) -> tuple[str, str]:
    if math.isnan(cell.mean):
        return "n/a", ""
    return f"{cell.mean:.2f}", ("" if cell.half is None else f"± {cell.half:.2f}")


def _detail_id(section: str, model: str, task: str) -> str:
    return f"{section}-d-" + re.sub(r"[^A-Za-z0-9_-]+", "_", f"{model}--{task}")


def build_view(table: tb.Table, published: dict, columns: list, section_id: str, details: set,
               note: str | None = None) -> View:
    """One leaderboard view; note: markdown lines shown under its legend (the tuned protocol's searches)."""
    comparable = published if table.metric == "accuracy" else {}  # the paper reports accuracy only
    rows = []
    for row in table.rows:
        cells = []
        for col, _ in columns:
            cell = row.cell(col)
            view = CellView(col=col)
            if cell is not None:
                view.mean, view.half = _cell_text(cell)
                view.n, view.sort = cell.n, "" if math.isnan(cell.mean) else repr(cell.mean)
                view.mark = table.marks.get((row.model, col), "")
                view.mark_class, view.mark_tag = mark_style(view.mark)
                if (row.model, col) in details:
                    view.detail = _detail_id(section_id, row.model, col)
            ref = comparable.get(col, {}).get(row.model)
            view.published = "" if ref is None else f"{ref:.2f}"
            cells.append(view)
        rows.append((row.model, row.display, cells))
    figure, caption = None, ""
    if any(row.cells for row in table.rows):
        from markupsafe import Markup

        figure = Markup(plot.to_svg(plot.tasks_figure(table, comparable)))
        caption = plot.tasks_caption(table, comparable)
    from markupsafe import Markup

    legend = inline_markdown(table_text.legend(table))
    for line in (note or "").splitlines():
        legend += Markup("<br>") + inline_markdown(line)
    return View(protocol=table.protocol, metric=table.metric, metric_label=tb.METRICS[table.metric], rows=rows,
                legend=legend, published_rows=tb.published_rows(table, comparable), figure=figure, caption=caption)


def _values(values) -> str:
    """One value, or 'a | b' where the seeds' records differ."""
    distinct = []
    for v in values:
        if v not in distinct:
            distinct.append(v)
    return " | ".join(_text(v) for v in distinct)


def _merged(dicts: list[dict]) -> dict:
    """key -> _values of that key over the dicts."""
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return {k: _values(d[k] for d in dicts if k in d) for k in keys}


def _text(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _seconds(s) -> str:
    if s is None:
        return "–"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _bytes(n) -> str:
    return "–" if n is None else f"{n / 2 ** 30:.2f} GiB"


def build_detail(section_id: str, records: list, tables: dict, results: Path, model_display: str,
                 task_display: str) -> Detail:
    from markupsafe import Markup

    records = sorted(records, key=lambda r: r.seed)
    first = records[0]
    model, task = first.model.name, first.task.name
    scores = []
    for (protocol, metric), table in tables.items():
        row = next((r for r in table.rows if r.model == model), None)
        cell = row.cells.get(task) if row else None
        if cell is not None:
            mean, half = _cell_text(cell)
            scores.append((protocol, tb.METRICS[metric], f"{mean} {half}".strip(), cell.n))
    seeds = []
    for r in records:
        entry = {"seed": r.seed, "path": str(record_path(results, task, model, r.variant, r.seed)), "scores": []}
        for protocol in PROTOCOLS:
            result = r.protocols.get(protocol)
            for metric in tb.METRICS:
                value = tb.record_score(r, protocol, metric)
                entry["scores"].append("–" if value is None else f"{value:.2f}")
            entry["scores"].append("–" if result is None else str(result.epoch))
        seeds.append(entry)
    overridden = set().union(*(r.overrides for r in records))
    settings = [(k, v, k in overridden) for k, v in _merged([r.hyperparameters for r in records]).items()]
    settings += [("limit (examples per split)", _values(r.limit for r in records), False)]
    settings += [(f"{k} examples", v, False) for k, v in _merged([r.dataset_sizes for r in records]).items()]
    cost = [{"seed": r.seed, "total": _seconds(r.timings and r.timings.total_s),
             "train": _seconds(r.timings and r.timings.train_s), "eval": _seconds(r.timings and r.timings.eval_s),
             "steps": sum(f.steps for f in r.fits), "tokens": f"{r.tokens.train_real if r.tokens else 0:,}",
             "padding": _text(r.tokens and r.tokens.padding_efficiency),
             "memory": (f"{_bytes(r.peak_memory.bytes)} ({r.peak_memory.kind})" if r.peak_memory else "–"),
             "device": r.device or "–",
             "trained": (f"{r.adaptation.method}: {r.adaptation.trainable_parameters:,} of "
                         f"{r.adaptation.total_parameters:,}") if r.adaptation else "–",
             "energy": (f"{r.cost.energy_kwh:.3g} kWh, {r.cost.emissions_kg:.3g} kg CO2eq ({r.cost.country})"
                        if r.cost and r.cost.energy_kwh is not None else "–")} for r in records]
    git = [f"{r.harness.version} @ {r.harness.git_commit or '–'}" + (" (dirty)" if r.harness.git_dirty else "")
           for r in records]
    provenance = [("task", _values(f"{r.task.hub_id} @ {r.task.revision_resolved or '–'}" for r in records)),
                  ("task source", _values(r.task.source for r in records)),
                  ("model source", _values(r.model.source for r in records)),
                  ("model revision", _values(r.model.revision_resolved for r in records)),
                  ("model family", _values(r.model.family for r in records)),
                  ("parameters", _values(r.model.parameters for r in records)),
                  ("precision", _values(r.precision for r in records)),
                  ("harness", _values(git)),
                  ("created", _values(r.created_at for r in records))]
    provenance += [(name, v) for name, v in _merged([r.packages for r in records]).items()]
    curves = Markup(plot.to_svg(plot.curves_figure(records))) if any(r.fits for r in records) else None
    return Detail(id=_detail_id(section_id, model, task), model=model_display, task=task_display, scores=scores,
                  seeds=seeds, curves=curves, settings=settings, cost=cost, provenance=provenance)


def _about(records) -> str:
    limits = sorted({r.limit for r in records if r.limit is not None})
    overrides = sorted({f"{k}={_text(v)}" for r in records for k, v in r.overrides.items()})
    parts = [f"limit {', '.join(map(str, limits))} examples per split" if limits else "full data"]
    parts.append("settings changed: " + ", ".join(overrides) if overrides else "the registered recipe")
    return "; ".join(parts)


def _scoring(records, metric: str) -> dict:
    """task -> what its column shows in the view of `metric`: that metric where the task records it, else
    the task's main metric (a regression task has no accuracy: its column shows Pearson in every view)."""
    out = {}
    for r in records:
        result = next((p for p in r.protocols.values() if p is not None), None)
        if result is not None and r.task.name not in out:
            out[r.task.name] = tb.ColumnScore(metric if metric in result.test else result.main)
    return out


def build_section(index: int, variant: str, records: list, tasks: list, models: list, published: dict,
                  results: Path, tuned: tuple | None = None) -> Section:
    """tuned: (the tuned cells' records of this variant, their note), where searches exist."""
    section_id = f"v{index}"
    tables = {(p, m): tb.build_table(records, p, tasks, models, variant, metric=m, scoring=_scoring(records, m))
              for p in PROTOCOLS for m in tb.METRICS}
    tuned_tables = {} if tuned is None else {
        (TUNED, m): tb.build_table(tuned[0], TUNED, tasks, models, variant, metric=m, scoring=_scoring(tuned[0], m))
        for m in tb.METRICS}
    # Columns any view fills (the CLI shows every registered task; a page hides the empty ones).
    columns = [(c, d) for c, d in tables[next(iter(tables))].columns
               if any(r.cell(c) is not None for t in [*tables.values(), *tuned_tables.values()] for r in t.rows)]
    by_cell: dict = {}
    for r in records:
        by_cell.setdefault((r.model.name, r.task.name), []).append(r)
    displays = {r.model: r.display for t in tables.values() for r in t.rows}
    task_displays = dict(tasks)
    cells = {key: recs for key, recs in sorted(by_cell.items()) if key[0] in displays and key[1] in task_displays}
    details = [build_detail(section_id, recs, tables, results, displays[m], task_displays[t])
               for (m, t), recs in cells.items()]
    views = [build_view(t, published, columns, section_id, set(cells)) for t in tables.values()]
    # A tuned cell's seeds are another variant's records: no detail view of this section's records behind it.
    views += [build_view(t, published, columns, section_id, set(), tuned[1]) for t in tuned_tables.values()]
    return Section(id=section_id, variant=variant, about=_about(records), columns=columns, views=views,
                   details=details)


def render_report(records, tasks: list, models: list, published: dict, results: Path, tuned=None) -> str:
    """records: complete RunRecords. tasks/models/published: as `harness table` gets them. tuned: the tuned
    protocol's cells (aggregate/tuned.TunedCells) where searches exist: a third protocol in every searched variant."""
    import jinja2

    from harness.aggregate.groups import variant_order

    searched = {s.base_variant for s in tuned.searches} if tuned is not None else set()
    variants = variant_order({r.variant for r in records} | searched)
    sections = [build_section(i, v, [r for r in records if r.variant == v], tasks, models, published, results,
                              _tuned_part(tuned, v) if v in searched else None)
                for i, v in enumerate(variants)]
    protocols = {**PROTOCOLS, **({TUNED: TUNED_ABOUT} if searched else {})}
    env = jinja2.Environment(loader=jinja2.PackageLoader("harness", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    commits = sorted({(r.harness.git_commit or "")[:10] + (" (dirty)" if r.harness.git_dirty else "")
                      for r in records} - {""})
    return env.get_template("report.html.j2").render(
        sections=sections, task_names=dict(tasks), protocols=protocols, detail_protocols=PROTOCOLS,
        metrics=tb.METRICS, results=str(results),
        version=__version__,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), commits=commits,
        counts={"runs": len(records), "models": len({r.model.name for r in records}),
                "tasks": len({r.task.name for r in records}), "variants": len(variants)})


def _tuned_part(tuned, variant: str) -> tuple:
    from harness.outputs.search_text import tuned_note

    return [r for r in tuned.records if r.variant == variant], tuned_note(tuned, variant)
