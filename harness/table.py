"""The comparison table: pure aggregation of records into cells, then rendering.

build_table() turns records into rows (models) x columns (tasks + Average); each cell is the mean
over seeds with a 95% t half-width. Marks per column: with one seed per cell the best is bold (the
published table's convention); with several, the best is bold only where Welch's test says it beats
the runner-up (p < 0.05); otherwise it and every cell not significantly below it are marked tied.
Each column reads one metric from the records (ColumnScore: accuracy unless told otherwise), raw or
normalized against a trivial baseline; the Average column exists where its columns share one scale.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field

from . import metrics, stats

ALPHA = 0.05


@dataclass(frozen=True)
class ColumnScore:
    """How one column turns a record into the number it shows: the metric (in table units, % for the percent
    metrics), or with `normalized` 100 x (score - baseline) / (best - baseline); the baseline and best are the
    task's declared ones, else the metric's trivial baseline on the record's own test labels and its perfect
    score (harness/metrics.py)."""
    metric: str = "accuracy"
    normalized: bool = False
    baseline: float | None = None  # declared in the task YAML
    best: float | None = None  # declared in the task YAML
    num_classes: int | None = None  # for the derived baseline of a classification metric

    @property
    def higher_is_better(self) -> bool:
        return self.normalized or metrics.METRICS[self.metric].higher_is_better

    @property
    def scale(self) -> str:
        """What the column's numbers are: columns that share it can be averaged."""
        return "normalized" if self.normalized else self.metric

    def of(self, record, protocol: str) -> float | None:
        result = record.protocols.get(protocol)
        if result is None or self.metric not in result.test:
            return None
        value = result.test[self.metric]
        if not self.normalized:
            return metrics.shown(self.metric, value)
        from .scores import decode_predictions

        baseline = self.baseline if self.baseline is not None else metrics.trivial_baseline(
            self.metric, decode_predictions(record.test_labels, record.task.type), self.num_classes)
        best = self.best if self.best is not None else metrics.METRICS[self.metric].best
        return 100.0 * metrics.normalized(value, baseline, best)


ACCURACY = ColumnScore()


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


@dataclass
class Table:
    protocol: str
    variant: str
    columns: list  # [(task name, display name)], then "average" where the columns share one scale
    rows: list
    marks: dict = field(default_factory=dict)  # (model, column) -> "best" | "tied"
    scoring: dict = field(default_factory=dict)  # task name -> ColumnScore (absent: accuracy)

    def score_of(self, col: str) -> ColumnScore:
        if col == "average":
            return next(iter(self.scoring.values()), ACCURACY) if self.scoring else ACCURACY
        return self.scoring.get(col, ACCURACY)

    @property
    def task_columns(self) -> list:
        return [c for c in self.columns if c[0] != "average"]

    @property
    def scales(self) -> list[str]:
        """The distinct scales of the task columns, in column order."""
        return list(dict.fromkeys(self.score_of(t).scale for t, _ in self.task_columns))


def record_score(record, protocol: str, scoring: ColumnScore = ACCURACY) -> float | None:
    return scoring.of(record, protocol)


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
                variant: str = "default", scoring: dict | None = None) -> Table:
    """records: complete RunRecords of one variant. tasks/models: (name, display) in display order;
    models seen in records but not listed are appended. scoring: task -> ColumnScore (default accuracy)."""
    scoring = {t: (scoring or {}).get(t, ACCURACY) for t, _ in tasks}
    scores: dict = {}
    displays = dict(models)
    for r in records:
        if r.task.name not in scoring:
            continue
        value = record_score(r, protocol, scoring[r.task.name])
        if value is None:
            continue
        scores.setdefault(r.model.name, {}).setdefault(r.task.name, []).append((r.seed, value))
        displays.setdefault(r.model.name, r.model.display_name)
    order = [m for m, _ in models if m in scores] + sorted(m for m in scores if m not in dict(models))
    task_names = [t for t, _ in tasks]
    averaged = len({s.scale for s in scoring.values()}) <= 1  # an Average of different metrics means nothing
    rows = []
    for m in order:
        cells = {t: cell_of(v) for t, v in scores[m].items() if t in task_names}
        avg = average_cell([cells[t] for t in task_names]) if averaged and task_names \
            and all(t in cells for t in task_names) else None
        rows.append(Row(model=m, display=displays[m], cells=cells, average=avg))
    columns = list(tasks) + ([("average", "Average")] if averaged else [])
    table = Table(protocol=protocol, variant=variant, columns=columns, rows=rows, scoring=scoring)
    for col, _ in table.columns:
        table.marks.update(mark_column(table, col))
    return table


def _cell(row: Row, col: str) -> Score | None:
    return row.average if col == "average" else row.cells.get(col)


def mark_column(table: Table, col: str) -> dict:
    present = [(r, _cell(r, col)) for r in table.rows if _cell(r, col) is not None]
    if len(present) < 2:
        return {(r.model, col): "best" for r, _ in present}
    sign = 1 if table.score_of(col).higher_is_better else -1
    present.sort(key=lambda rc: -sign * rc[1].mean)
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
    """published: task -> {model: figure in the column's units}. One row per (model, task) with both numbers."""
    out = []
    for row in table.rows:
        for task, _ in table.task_columns:
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


def column_heads(table: Table) -> list[str]:
    """The column titles; where the columns hold different metrics, each names its own."""
    if len(table.scales) <= 1:
        return [d for _, d in table.columns]
    return [f"{d} ({metrics.METRICS[table.score_of(c).metric].display})" for c, d in table.columns]


def to_markdown(table: Table) -> str:
    head = ["Models"] + column_heads(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("-" * (len(h) + 2) for h in head) + "|"]
    for row in table.rows:
        cells = [row.display]
        for col, _ in table.columns:
            text = fmt_cell(_cell(row, col))
            mark = table.marks.get((row.model, col))
            cells.append(f"**{text}**" if mark == "best" else f"*{text}* ≈" if mark == "tied" else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _what(table: Table) -> str:
    """What the cells hold, for the legend's first words."""
    scales = table.scales
    if not scales or scales == ["accuracy"]:
        return "Accuracy (%)"
    if scales == ["normalized"]:
        used = dict.fromkeys(metrics.METRICS[table.score_of(t).metric].display for t, _ in table.task_columns)
        return (f"Normalized score (%), 100 x (score - baseline) / (max - baseline) of each task's metric "
                f"({', '.join(used)}; baseline: declared in the task file, else the metric's trivial baseline, "
                f"see the README)")
    if len(scales) == 1:
        m = metrics.METRICS[scales[0]]
        return f"{m.display}{' (%)' if m.percent else ' (lower is better)'}"
    return "Scores (each column's metric in its header; x100, except MSE, where lower is better)"


def legend(table: Table) -> str:
    several = any(c.n >= 2 for r in table.rows for c in r.cells.values())
    mains = dict.fromkeys(table.score_of(t).metric for t, _ in table.task_columns)
    on = "accuracy" if not mains else "/".join(metrics.METRICS[m].display if m != "accuracy" else m for m in mains)
    picked = ("best epoch picked on the test split, as the paper did" if table.protocol == "published"
              else f"epoch picked on validation {on}, test reported at that epoch")
    text = f"{_what(table)} on test, protocol *{table.protocol}* ({picked}); variant `{table.variant}`."
    if several:
        text += (" Cells: mean over seeds ± 95% t-interval half-width (n seeds). Bold: best, significantly above "
                 f"the runner-up (Welch's t-test, p < {ALPHA}); *italic ≈*: tied with the best (not significantly "
                 "different). Average: mean of the task means; its interval over the seeds every task has.")
    else:
        text += " One seed per cell: bold is the best, with no test of significance."
    if any(c == "average" for c, _ in table.columns):
        return text + " A row missing a task has no average."
    return text + " No Average: the columns hold different metrics (`--normalized` puts them on one scale)."


def published_markdown(rows: list[dict], metric_of: dict | None = None) -> str:
    """metric_of: task -> metric, to name it beside the task where the table is not all accuracy."""
    lines = ["| Model | Task | Published | Ours | Difference | Published inside our 95% CI |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        task = r["task"] if not metric_of else f"{r['task']} ({metrics.METRICS[metric_of[r['task']]].display})"
        ours = f"{r['ours']:.2f}" + (f" ± {r['half']:.2f}" if r["half"] is not None else "")
        inside = "n/a (1 seed)" if r["published_inside_ci"] is None else (
            "yes" if r["published_inside_ci"] else "**no**")
        lines.append(f"| {r['display']} | {task} | {r['published']:.2f} | {ours} | {r['difference']:+.2f} "
                     f"| {inside} |")
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["variant", "protocol", "model", "column", "mean", "ci95_half", "n", "mark", "metric"])
    for row in table.rows:
        for col, _ in table.columns:
            c = _cell(row, col)
            if c is not None:
                w.writerow([table.variant, table.protocol, row.model, col, f"{c.mean:.4f}",
                            "" if c.half is None else f"{c.half:.4f}", c.n, table.marks.get((row.model, col), ""),
                            table.score_of(col).scale])
    return buf.getvalue()


def to_latex(table: Table) -> str:
    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")

    lines = [r"\begin{tabular}{l" + "c" * len(table.columns) + "}", r"\toprule",
             "Models & " + " & ".join(esc(d) for d in column_heads(table)) + r" \\", r"\midrule"]
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
            "rows": [{"model": r.model, "display": r.display,
                      "cells": {t: asdict(c) for t, c in r.cells.items()},
                      "average": asdict(r.average) if r.average else None} for r in table.rows],
            "marks": [{"model": m, "column": c, "mark": k} for (m, c), k in sorted(table.marks.items())],
            "published_comparison": published,
            "metrics": {c: table.score_of(c).scale for c, _ in table.columns}}


EXTENSIONS = {"markdown": "md", "csv": "csv", "latex": "tex", "json": "json"}


def render(records, protocol: str, fmt: str, variants: list[str], tasks: list[tuple[str, str]],
           models: list[tuple[str, str]], published: dict, scoring: dict | None = None) -> str:
    """The text of `harness table` in one format: one table per variant (records: complete ones).
    published: task -> {model: figure in the column's units}; scoring: task -> ColumnScore."""
    parts, blobs = [], []
    for v in variants:
        table = build_table([r for r in records if r.variant == v], protocol, tasks, models, v, scoring)
        cmp_rows = published_rows(table, published)
        if fmt == "markdown":
            section = f"## Variant `{v}`, protocol `{protocol}`\n\n{to_markdown(table)}\n\n{legend(table)}\n"
            if cmp_rows:
                named = None if table.scales == ["accuracy"] else {t: table.score_of(t).metric
                                                                   for t, _ in table.task_columns}
                section += f"\n### Against the published table\n\n{published_markdown(cmp_rows, named)}\n"
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
