"""The comparison table: pure aggregation of records into cells, then rendering.

build_table() turns records into rows (models) x columns (tasks + Average); each cell is the mean
over seeds with a 95% t half-width. Marks per column: with one seed per cell the best is bold (the
published table's convention); with several, the best is bold only where Welch's test says it beats
the runner-up (p < 0.05); otherwise it and every cell not significantly below it are marked tied.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field

from . import stats

ALPHA = 0.05


@dataclass
class Score:
    mean: float
    half: float | None  # 95% half-width; None with one seed
    n: int
    values: list[float]  # per seed, in %
    seeds: list[int] = field(default_factory=list)


@dataclass
class Row:
    model: str
    display: str
    cells: dict  # task name -> Score (absent: not run)
    average: Score | None = None
    source: str | None = None  # where an unregistered (local) model came from; the legend names it


@dataclass
class Table:
    protocol: str
    variant: str
    columns: list  # [(task name, display name)], then "average"
    rows: list
    marks: dict = field(default_factory=dict)  # (model, column) -> "best" | "tied"


def record_score(record, protocol: str) -> float | None:
    result = record.protocols.get(protocol)
    return None if result is None else 100.0 * result.test_accuracy


def cell_of(pairs: list[tuple[int, float]]) -> Score:
    pairs = sorted(pairs)
    values = [v for _, v in pairs]
    mean, half, n = stats.mean_ci(values)
    return Score(mean=mean, half=half, n=n, values=values, seeds=[s for s, _ in pairs])


def average_cell(cells: list[Score]) -> Score:
    """Mean of the task means; the interval from per-seed averages over the seeds every task has."""
    common = set(cells[0].seeds).intersection(*(c.seeds for c in cells[1:]))
    per_seed = [sum(c.values[c.seeds.index(s)] for c in cells) / len(cells) for s in sorted(common)]
    mean = sum(c.mean for c in cells) / len(cells)
    _, half, n = stats.mean_ci(per_seed) if len(per_seed) >= 2 else (None, None, len(per_seed))
    return Score(mean=mean, half=half, n=n, values=per_seed, seeds=sorted(common))


def build_table(records, protocol: str, tasks: list[tuple[str, str]], models: list[tuple[str, str]],
                variant: str = "default") -> Table:
    """records: complete RunRecords of one variant. tasks/models: (name, display) in display order;
    models seen in records but not listed are appended."""
    scores: dict = {}
    displays, sources = dict(models), {}
    for r in records:
        value = record_score(r, protocol)
        if value is None:
            continue
        scores.setdefault(r.model.name, {}).setdefault(r.task.name, []).append((r.seed, value))
        displays.setdefault(r.model.name, r.model.display_name)
        if r.model.name not in dict(models):
            sources[r.model.name] = r.model.source
    order = [m for m, _ in models if m in scores] + sorted(m for m in scores if m not in dict(models))
    shown = [displays[m] for m in order]
    for m in sources:  # two local folders of the same name: their rows show the unique names instead
        if shown.count(displays[m]) > 1:
            displays[m] = m
    task_names = [t for t, _ in tasks]
    rows = []
    for m in order:
        cells = {t: cell_of(v) for t, v in scores[m].items() if t in task_names}
        avg = average_cell([cells[t] for t in task_names]) if task_names and all(t in cells for t in task_names) \
            else None
        rows.append(Row(model=m, display=displays[m], cells=cells, average=avg, source=sources.get(m)))
    table = Table(protocol=protocol, variant=variant, columns=list(tasks) + [("average", "Average")], rows=rows)
    for col, _ in table.columns:
        table.marks.update(mark_column(table, col))
    return table


def _cell(row: Row, col: str) -> Score | None:
    return row.average if col == "average" else row.cells.get(col)


def mark_column(table: Table, col: str) -> dict:
    present = [(r, _cell(r, col)) for r in table.rows if _cell(r, col) is not None]
    if len(present) < 2:
        return {(r.model, col): "best" for r, _ in present}
    present.sort(key=lambda rc: -rc[1].mean)
    (best_row, best), (_, runner) = present[0], present[1]
    if best.n < 2 or runner.n < 2:
        return {(best_row.model, col): "best"}
    p = stats.welch_p(best.values, runner.values)
    if p is not None and p < ALPHA:
        return {(best_row.model, col): "best"}
    marks = {(best_row.model, col): "tied"}
    for r, c in present[1:]:
        q = stats.welch_p(best.values, c.values) if c.n >= 2 else None
        if q is not None and q >= ALPHA:
            marks[(r.model, col)] = "tied"
    return marks


def published_rows(table: Table, published: dict) -> list[dict]:
    """published: task -> {model: accuracy}. One row per (model, task) with both numbers."""
    out = []
    for row in table.rows:
        for task, _ in table.columns[:-1]:
            ref = published.get(task, {}).get(row.model)
            cell = row.cells.get(task)
            if ref is None or cell is None:
                continue
            inside = None if cell.half is None else (cell.mean - cell.half <= ref <= cell.mean + cell.half)
            out.append({"model": row.model, "display": row.display, "task": task, "published": ref,
                        "ours": cell.mean, "half": cell.half, "n": cell.n, "difference": cell.mean - ref,
                        "published_inside_ci": inside})
    return out


# ------------------------------------------------------------------ rendering

def fmt_cell(cell: Score | None) -> str:
    if cell is None:
        return "–"
    if cell.half is None:
        return f"{cell.mean:.2f}"
    return f"{cell.mean:.2f} ± {cell.half:.2f} (n={cell.n})"


def to_markdown(table: Table) -> str:
    head = ["Models"] + [d for _, d in table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("-" * (len(h) + 2) for h in head) + "|"]
    for row in table.rows:
        cells = [row.display]
        for col, _ in table.columns:
            text = fmt_cell(_cell(row, col))
            mark = table.marks.get((row.model, col))
            cells.append(f"**{text}**" if mark == "best" else f"*{text}* ≈" if mark == "tied" else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def legend(table: Table) -> str:
    several = any(c.n >= 2 for r in table.rows for c in r.cells.values())
    picked = ("best epoch picked on the test split, as the paper did" if table.protocol == "published"
              else "epoch picked on validation accuracy, test reported at that epoch")
    text = f"Accuracy (%) on test, protocol *{table.protocol}* ({picked}); variant `{table.variant}`."
    if several:
        text += (" Cells: mean over seeds ± 95% t-interval half-width (n seeds). Bold: best, significantly above "
                 f"the runner-up (Welch's t-test, p < {ALPHA}); *italic ≈*: tied with the best (not significantly "
                 "different). Average: mean of the task means; its interval over the seeds every task has.")
    else:
        text += " One seed per cell: bold is the best, with no test of significance."
    text += " A row missing a task has no average."
    local = [f"{r.display}: `{r.source}`" for r in table.rows if r.source]
    if local:
        text += " Unregistered models, by source: " + "; ".join(local) + "."
    return text


def published_markdown(rows: list[dict]) -> str:
    lines = ["| Model | Task | Published | Ours | Difference | Published inside our 95% CI |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ours = f"{r['ours']:.2f}" + (f" ± {r['half']:.2f}" if r["half"] is not None else "")
        inside = "n/a (1 seed)" if r["published_inside_ci"] is None else (
            "yes" if r["published_inside_ci"] else "**no**")
        lines.append(f"| {r['display']} | {r['task']} | {r['published']:.2f} | {ours} | {r['difference']:+.2f} "
                     f"| {inside} |")
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["variant", "protocol", "model", "column", "mean", "ci95_half", "n", "mark"])
    for row in table.rows:
        for col, _ in table.columns:
            c = _cell(row, col)
            if c is not None:
                w.writerow([table.variant, table.protocol, row.model, col, f"{c.mean:.4f}",
                            "" if c.half is None else f"{c.half:.4f}", c.n, table.marks.get((row.model, col), "")])
    return buf.getvalue()


def to_latex(table: Table) -> str:
    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")

    lines = [r"\begin{tabular}{l" + "c" * len(table.columns) + "}", r"\toprule",
             "Models & " + " & ".join(esc(d) for _, d in table.columns) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = []
        for col, _ in table.columns:
            c = _cell(row, col)
            text = "--" if c is None else (f"{c.mean:.2f}" if c.half is None else f"{c.mean:.2f} $\\pm$ {c.half:.2f}")
            mark = table.marks.get((row.model, col))
            cells.append(rf"\textbf{{{text}}}" if mark == "best" else rf"\textit{{{text}}}" if mark == "tied" else text)
        lines.append(esc(row.display) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_json_obj(table: Table, published: list[dict]) -> dict:
    return {"protocol": table.protocol, "variant": table.variant, "columns": [c for c, _ in table.columns],
            "rows": [{"model": r.model, "display": r.display, "source": r.source,
                      "cells": {t: asdict(c) for t, c in r.cells.items()},
                      "average": asdict(r.average) if r.average else None} for r in table.rows],
            "marks": [{"model": m, "column": c, "mark": k} for (m, c), k in sorted(table.marks.items())],
            "published_comparison": published}


EXTENSIONS = {"markdown": "md", "csv": "csv", "latex": "tex", "json": "json"}


def render(records, protocol: str, fmt: str, variants: list[str], tasks: list[tuple[str, str]],
           models: list[tuple[str, str]], published: dict) -> str:
    """The text of `harness table` in one format: one table per variant (records: complete ones)."""
    parts, blobs = [], []
    for v in variants:
        table = build_table([r for r in records if r.variant == v], protocol, tasks, models, v)
        cmp_rows = published_rows(table, published)
        if fmt == "markdown":
            section = f"## Variant `{v}`, protocol `{protocol}`\n\n{to_markdown(table)}\n\n{legend(table)}\n"
            if cmp_rows:
                section += f"\n### Against the published table\n\n{published_markdown(cmp_rows)}\n"
            parts.append(section)
        elif fmt == "csv":
            parts.append(to_csv(table) if not parts else to_csv(table).split("\n", 1)[1])
        elif fmt == "latex":
            parts.append(f"% variant {v}, protocol {protocol}\n{to_latex(table)}\n")
        else:
            blobs.append(to_json_obj(table, cmp_rows))
    if fmt == "json":
        return json.dumps(blobs, indent=1, ensure_ascii=False) + "\n"
    return "\n".join(parts)
