"""The comparison table: pure aggregation of records into cells, then rendering.

build_table() turns records (one variant, one precision) into rows (models) x columns (tasks +
Average); each cell is the mean over seeds with a 95% t half-width of that mean. mark_column() ranks
and tests a column on the same per-seed values the cell shows:

- "best" (bold): the highest mean, and a two-sided Welch test against the runner-up gives p < 0.05.
  Two-sided because the best was picked as the larger: a one-sided test after that pick would call
  a tie "significant" 10% of the time instead of 5%.
- "tied" (italic ≈): the highest mean and every cell not shown to differ from it (the same mean
  exactly, or Welch p >= 0.05).
- "untested" (†): the highest mean where the best or the runner-up has one seed: no test is possible.
- no mark in a column with one model: there is nothing to be above.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field

from . import stats
from .stats import ALPHA

# The test-set metrics a record's protocol results carry (ProtocolResult.test_<name>), in display order.
METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro-F1"}


@dataclass
class Score:
    mean: float  # the mean of values: what is shown, ranked and tested are the same numbers
    half: float | None  # 95% half-width of the mean; None with one seed
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
    marks: dict = field(default_factory=dict)  # (model, column) -> "best" | "tied" | "untested"
    precision: str = ""  # what the records were computed in, e.g. "fp32 (cpu)": never pooled across
    metric: str = "accuracy"  # a key of METRICS


@dataclass(frozen=True)
class SeedScore:
    """One seed's number for one (variant, precision, model, task): what a table is built from."""
    variant: str
    model: str
    model_display: str
    task: str
    seed: int
    value: float  # in %
    precision: str = ""  # the group's label, e.g. "fp32 (cpu)" (selection.Group.label)
    model_source: str = ""  # hub id, folder or package:<module>; the legend names an unregistered model's


def record_score(record, protocol: str, metric: str = "accuracy") -> float | None:
    result = record.protocols.get(protocol)
    return None if result is None else 100.0 * getattr(result, f"test_{metric}")


def cell_of(pairs: list[tuple[int, float]]) -> Score:
    pairs = sorted(pairs)
    values = [v for _, v in pairs]
    mean, half, n = stats.mean_ci(values)
    return Score(mean=mean, half=half, n=n, values=values, seeds=[s for s, _ in pairs])


def average_cell(cells: list[Score]) -> Score | None:
    """Per seed that every task has, the mean over tasks; the cell's mean, interval and test all come
    from those per-seed averages. None when the tasks share no seed."""
    common = sorted(set(cells[0].seeds).intersection(*(c.seeds for c in cells[1:])))
    if not common:
        return None
    per_seed = [sum(c.values[c.seeds.index(s)] for c in cells) / len(cells) for s in common]
    mean, half, n = stats.mean_ci(per_seed)
    return Score(mean=mean, half=half, n=n, values=per_seed, seeds=common)


def seed_scores(records, protocol: str, metric: str = "accuracy") -> list[SeedScore]:
    """One SeedScore per record with a result under this protocol, labelled with its (variant, precision) group."""
    from .selection import groups

    return [SeedScore(r.variant, r.model.name, r.model.display_name, r.task.name, r.seed, value, g.label,
                      r.model.source)
            for g in groups(records) for r in g.records if (value := record_score(r, protocol, metric)) is not None]


def build_table(records, protocol: str, tasks: list[tuple[str, str]], models: list[tuple[str, str]],
                variant: str = "default", precision: str = "", metric: str = "accuracy") -> Table:
    """records: complete RunRecords of one variant and one precision. tasks/models: (name, display) in
    display order; models seen in records but not listed are appended. metric: a key of METRICS."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    return table_of(seed_scores(records, protocol, metric), protocol, tasks, models, variant, precision, metric)


def table_of(seed_values: list[SeedScore], protocol: str, tasks: list[tuple[str, str]],
             models: list[tuple[str, str]], variant: str = "default", precision: str = "",
             metric: str = "accuracy") -> Table:
    """The table of one (variant, precision) group from its per-seed scores (records, or a results
    DataFrame: harness/results.py)."""
    scores: dict = {}
    displays, sources = dict(models), {}
    for s in seed_values:
        scores.setdefault(s.model, {}).setdefault(s.task, []).append((s.seed, s.value))
        displays.setdefault(s.model, s.model_display)
        if s.model not in dict(models) and s.model_source:
            sources[s.model] = s.model_source
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
    table = Table(protocol=protocol, variant=variant, columns=list(tasks) + [("average", "Average")], rows=rows,
                  precision=precision, metric=metric)
    for col, _ in table.columns:
        table.marks.update(mark_column(table, col))
    return table


def _cell(row: Row, col: str) -> Score | None:
    return row.average if col == "average" else row.cells.get(col)


def _same(x: float, y: float) -> bool:
    return math.isclose(x, y, rel_tol=0, abs_tol=1e-9)


def mark_column(table: Table, col: str) -> dict:
    """The marks of one column (see the module docstring); ranks and tests cell.values (cell.mean is their mean)."""
    present = [(r.model, _cell(r, col)) for r in table.rows if _cell(r, col) is not None]
    if len(present) < 2:
        return {}
    present.sort(key=lambda mc: -mc[1].mean)
    (best_model, best), (_, runner) = present[0], present[1]
    if not _same(best.mean, runner.mean):
        if best.n < 2 or runner.n < 2:
            return {(best_model, col): "untested"}
        w = stats.welch(best.values, runner.values)
        if w.p < ALPHA and w.difference > 0:
            return {(best_model, col): "best"}
    marks = {(best_model, col): "tied"}
    for model, c in present[1:]:
        w = stats.welch(best.values, c.values)
        if _same(c.mean, best.mean) or (w is not None and w.p >= ALPHA):
            marks[(model, col)] = "tied"
    return marks


def published_rows(table: Table, published: dict) -> list[dict]:
    """published: task -> {model: accuracy}. One row per (model, task) with both numbers. The published
    number is one run, so it is checked against our 95% prediction interval for one new run
    (mean ± t * s * sqrt(1 + 1/n)), not the interval of our mean; with one seed there is no interval."""
    out = []
    for row in table.rows:
        for task, _ in table.columns[:-1]:
            ref = published.get(task, {}).get(row.model)
            cell = row.cells.get(task)
            if ref is None or cell is None:
                continue
            pi = stats.prediction_half(cell.values)
            inside = None if pi is None else (cell.mean - pi <= ref <= cell.mean + pi)
            out.append({"model": row.model, "display": row.display, "task": task, "published": ref,
                        "ours": cell.mean, "half": cell.half, "n": cell.n, "difference": cell.mean - ref,
                        "prediction_half": pi, "published_inside_prediction": inside})
    return out


# ------------------------------------------------------------------ rendering

UNTESTED = "†"


def fmt_cell(cell: Score | None) -> str:
    if cell is None:
        return "–"
    if cell.half is None:
        return f"{cell.mean:.2f}"
    return f"{cell.mean:.2f} ± {cell.half:.2f} (n={cell.n})"


def _marked(text: str, mark: str | None) -> str:
    return {"best": f"**{text}**", "tied": f"*{text}* ≈", "untested": f"{text} {UNTESTED}"}.get(mark, text)


def to_markdown(table: Table) -> str:
    head = ["Models"] + [d for _, d in table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("-" * (len(h) + 2) for h in head) + "|"]
    for row in table.rows:
        cells = [row.display] + [_marked(fmt_cell(_cell(row, col)), table.marks.get((row.model, col)))
                                 for col, _ in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heading(table: Table) -> str:
    """What the table holds, in one line: every output names its protocol, variant and precision."""
    text = f"variant `{table.variant}`, protocol `{table.protocol}`"
    return text + (f", precision {table.precision}" if table.precision else "")


def legend(table: Table) -> str:
    """What each number and mark in this table means; only the marks it uses are explained."""
    picked = ("best epoch picked on the test split, as the paper did" if table.protocol == "published"
              else "epoch picked on validation accuracy, test reported at that epoch")
    text = f"{METRICS[table.metric]} (%) on test, protocol *{table.protocol}* ({picked}); variant `{table.variant}`"
    text += f"; precision {table.precision}." if table.precision else "."
    cells = [c for r in table.rows for c in list(r.cells.values()) + [r.average] if c is not None]
    if any(c.n >= 2 for c in cells):
        text += " Cells: mean over seeds ± 95% t-interval half-width of the mean (n seeds); no ± with one seed."
    used = set(table.marks.values())
    if "best" in used:
        text += (f" **Bold**: the highest in its column, significantly above the runner-up (two-sided Welch t-test "
                 f"on the per-seed values, p < {ALPHA}).")
    if "tied" in used:
        text += (" *Italic* ≈: the highest, and the cells not shown to differ from it (the same number, or "
                 f"Welch p ≥ {ALPHA}).")
    if "untested" in used:
        text += (f" {UNTESTED}: the highest in its column, untested: it or the runner-up has one seed, so no test "
                 "is possible.")
    lone = [d for col, d in table.columns if sum(_cell(r, col) is not None for r in table.rows) == 1]
    if lone:
        text += f" A column with one model has no mark ({', '.join(lone)})."
    text += (" Average: per seed that every task has, the mean over the tasks; its mean, interval and test "
             "come from those per-seed averages (n = seeds in common). A row missing a task, or whose tasks "
             "share no seed, has no average.")
    local = [f"{r.display}: `{r.source}`" for r in table.rows if r.source]
    if local:
        text += " Unregistered models, by source: " + "; ".join(local) + "."
    return text


def published_markdown(rows: list[dict]) -> str:
    lines = ["| Model | Task | Published | Ours | Difference | Our 95% prediction interval for one run | "
             "Published inside it |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ours = f"{r['ours']:.2f}" + (f" ± {r['half']:.2f} (n={r['n']})" if r["half"] is not None else " (n=1)")
        if r["prediction_half"] is None:
            interval, inside = "none (1 seed)", "n/a"
        else:
            lo, hi = r["ours"] - r["prediction_half"], r["ours"] + r["prediction_half"]
            interval, inside = f"{lo:.2f} – {hi:.2f}", "yes" if r["published_inside_prediction"] else "**no**"
        lines.append(f"| {r['display']} | {r['task']} | {r['published']:.2f} | {ours} | {r['difference']:+.2f} | "
                     f"{interval} | {inside} |")
    return "\n".join(lines)


PUBLISHED_LEGEND = ("The published number is one run: it is checked against the 95% prediction interval for one "
                    "new run of ours, mean ± t(n-1) · s · √(1 + 1/n), which a run from the same distribution as "
                    "our seeds falls outside 5% of the time. With one seed there is no interval and no flag.")


PUBLISHED_ELSEWHERE = ("Against the published table: `harness table --protocol published` (the paper picked its "
                       "epoch on the test split, so only our published protocol is comparable with it).")


def to_csv(table: Table, header: bool = True) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    if header:
        w.writerow(["variant", "protocol", "precision", "model", "column", "mean", "ci95_half", "n", "mark"])
    for row in table.rows:
        for col, _ in table.columns:
            c = _cell(row, col)
            if c is not None:
                w.writerow([table.variant, table.protocol, table.precision, row.model, col, f"{c.mean:.4f}",
                            "" if c.half is None else f"{c.half:.4f}", c.n, table.marks.get((row.model, col), "")])
    return buf.getvalue()


def to_latex(table: Table) -> str:
    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")

    lines = [f"% {heading(table)}", r"\begin{tabular}{l" + "c" * len(table.columns) + "}", r"\toprule",
             "Models & " + " & ".join(esc(d) for _, d in table.columns) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = []
        for col, _ in table.columns:
            c = _cell(row, col)
            text = "--" if c is None else (f"{c.mean:.2f}" if c.half is None else f"{c.mean:.2f} $\\pm$ {c.half:.2f}")
            mark = table.marks.get((row.model, col))
            cells.append({"best": rf"\textbf{{{text}}}", "tied": rf"\textit{{{text}}}",
                          "untested": rf"{text}$^\dagger$"}.get(mark, text))
        lines.append(esc(row.display) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def to_json_obj(table: Table, published: list[dict]) -> dict:
    return {"protocol": table.protocol, "variant": table.variant, "precision": table.precision,
            "columns": [c for c, _ in table.columns],
            "rows": [{"model": r.model, "display": r.display, "source": r.source,
                      "cells": {t: asdict(c) for t, c in r.cells.items()},
                      "average": asdict(r.average) if r.average else None} for r in table.rows],
            "marks": [{"model": m, "column": c, "mark": k} for (m, c), k in sorted(table.marks.items())],
            "legend": legend(table), "published_comparison": published}


def render(records, protocol: str, fmt: str, tasks: list[tuple[str, str]], models: list[tuple[str, str]],
           published: dict) -> str:
    """The text of `harness table` in one format (markdown, csv, latex, json): one table per
    (variant, precision) group of the complete records given; never pooled across groups."""
    return render_scores(seed_scores(records, protocol), protocol, fmt, tasks, models, published)


def render_scores(seed_values: list[SeedScore], protocol: str, fmt: str, tasks: list[tuple[str, str]],
                  models: list[tuple[str, str]], published: dict) -> str:
    """render() from per-seed scores, one table per (variant, precision) in the order they come."""
    by_group: dict = {}
    for s in seed_values:
        by_group.setdefault((s.variant, s.precision), []).append(s)
    parts, blobs = [], []
    for (variant, precision), values in by_group.items():
        table = table_of(values, protocol, tasks, models, variant, precision)
        # The published numbers picked their epoch on test: only our published protocol compares with them.
        cmp_rows = published_rows(table, published) if protocol == "published" else []
        if fmt == "markdown":
            title = heading(table)
            section = f"## {title[0].upper() + title[1:]}\n\n{to_markdown(table)}\n\n{legend(table)}\n"
            if cmp_rows:
                section += (f"\n### Against the published table\n\n{published_markdown(cmp_rows)}\n\n"
                            f"{PUBLISHED_LEGEND}\n")
            elif published_rows(table, published):
                section += f"\n{PUBLISHED_ELSEWHERE}\n"
            parts.append(section)
        elif fmt == "csv":
            parts.append(to_csv(table, header=not parts))
        elif fmt == "latex":
            parts.append(f"{to_latex(table)}\n")
        else:
            blobs.append(to_json_obj(table, cmp_rows))
    if fmt == "json":
        return json.dumps(blobs, indent=1, ensure_ascii=False) + "\n"
    return "\n".join(parts)
