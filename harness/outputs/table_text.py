"""The comparison table as text: markdown (with its legend), csv, latex and json, one table per
(variant, precision) group. The numbers and marks come from harness/aggregate/table.py; this module only writes them."""
from __future__ import annotations

import csv
import html
import io
import json
import math
import re

from harness import metrics
from harness.aggregate.stats import ALPHA
from harness.aggregate.table import Score, SeedScore, Table, published_rows, scoring_for, seed_scores, table_of

UNTESTED = "†"


def fmt_cell(cell: Score | None) -> str:
    if cell is None:
        return "–"
    if math.isnan(cell.mean):
        return "n/a"
    if cell.half is None:
        return f"{cell.mean:.2f}"
    return f"{cell.mean:.2f} ± {cell.half:.2f} (n={cell.n})"


def _marked(text: str, mark: str | None) -> str:
    return {"best": f"**{text}**", "tied": f"*{text}* ≈", "untested": f"{text} {UNTESTED}"}.get(mark, text)


def md(text: str) -> str:
    """A name as markdown text: HTML shown as text, and a `|` that does not end the table's cell."""
    return html.escape(str(text), quote=False).replace("|", "\\|")


def column_heads(table: Table) -> list[str]:
    """The column titles; where the columns hold different metrics, each names its own."""
    if len(table.scales) <= 1:
        return [d for _, d in table.columns]
    return [f"{d} ({metrics.METRICS[table.score_of(c).metric].display})" for c, d in table.columns]


def to_markdown(table: Table) -> str:
    head = ["Models"] + [md(h) for h in column_heads(table)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("-" * (len(h) + 2) for h in head) + "|"]
    for row in table.rows:
        cells = [md(row.display)] + [_marked(fmt_cell(row.cell(col)), table.marks.get((row.model, col)))
                                 for col, _ in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def heading(table: Table) -> str:
    """What the table holds, in one line: every output names its protocol, variant and precision."""
    text = f"variant `{table.variant}`, protocol `{table.protocol}`"
    return text + (f", precision {table.precision}" if table.precision else "")


def legend(table: Table, name=md) -> str:
    """What each number and mark in this table means; only the marks it uses are explained. name: how a task or
    model name is written (markdown-escaped by default; the HTML report escapes on its own)."""
    mains = dict.fromkeys(table.score_of(t).metric for t, _ in table.task_columns) or {table.metric: None}
    # The epoch is picked by each task's main metric; with raw accuracy columns (the TTL tasks) that is accuracy.
    on = "accuracy" if table.only_accuracy else "by each task's main metric"
    picked = {"published": "best epoch picked on the test split, as the paper did",
              "tuned": f"each cell at the setting its search chose on validation (below), epoch picked on validation "
                       f"{on}, test reported at that epoch"}.get(
        table.protocol, f"epoch picked on validation {on}, test reported at that epoch")
    text = f"{_what(table, mains)} on test, protocol *{table.protocol}* ({picked}); variant `{table.variant}`"
    text += f"; precision {table.precision}." if table.precision else "."
    cells = [c for r in table.rows for c in list(r.cells.values()) + [r.average] if c is not None]
    if any(c.n >= 2 for c in cells):
        text += " Cells: mean over seeds ± 95% t-interval half-width of the mean (n seeds); no ± with one seed."
    text += marks_legend(table)
    lone = [name(d) for col, d in table.columns if sum(r.cell(col) is not None for r in table.rows) == 1]
    if lone:
        text += f" A column with one model has no mark ({', '.join(lone)})."
    if not any(c == "average" for c, _ in table.columns):
        text += " No Average: the columns hold different metrics (`--normalized` puts them on one scale)."
    else:
        text += (" Average: the mean of the row's task means (a row missing a task has none); its ± and its test add "
                 "up the per-task variances over T², with Welch-Satterthwaite degrees of freedom, so every seed of "
                 "every task counts (n: the fewest seeds of any task).")
    # The source as shared output names it (a hub id, package:<module>, a folder's name and weights hash): no path
    local = [f"{name(r.display)}: `{r.source}`" for r in table.rows if r.source]
    if local:
        text += " Unregistered models, by source: " + "; ".join(local) + "."
    return text


TESTS = {  # what each test the marks used (aggregate/marks.py) is, and what it speaks for
    "seed-aware": ("the seed-aware test of `harness compare` (the difference of the means over seeds, with the "
                   "variance from seed to seed and from test example to test example: it speaks for new seeds and "
                   "new test examples)"),
    "welch": ("Welch's t-test on the per-seed values where the records' test predictions are missing or do not "
              "give their scores (seed variance only: it speaks for new seeds, not for new test examples)"),
}


def marks_legend(table: Table) -> str:
    """The rule of the marks this table uses, and the tests behind them."""
    used, text = set(table.marks.values()), ""
    if "best" in used:
        text += f" **Bold**: significantly better than every other cell of its column (two-sided, p < {ALPHA} " \
                f"against each)."
    if "tied" in used:
        text += (f" *Italic* ≈: not shown to be worse than the column's best (p ≥ {ALPHA}, or no test possible), "
                 "the best included where it is not bold.")
    if "untested" in used:
        text += (f" {UNTESTED}: the column's best, better than every cell it could be tested against, but not bold: "
                 "a cell beside it cannot be tested (one seed, or no spread to test with).")
    if "undefined" in used:
        text += (" n/a: not a number (a normalized score whose baseline is the best score); it takes no part in the "
                 "marks.")
    if table.tests:
        text += " Each cell is tested against its column's best with " + \
            "; and ".join(TESTS[t] for t in sorted(table.tests)) + "."
    return text


def _what(table: Table, mains: dict) -> str:
    """What the cells hold, for the legend's first words."""
    scales = table.scales or [table.metric]
    if scales == ["normalized"]:
        used = ", ".join(metrics.METRICS[m].display for m in mains)
        return (f"Normalized score (%), 100 x (score - baseline) / (max - baseline) of each column's metric ({used}; "
                f"baseline: declared in the task file, else the metric's trivial baseline on the test labels)")
    if len(scales) == 1:
        m = metrics.METRICS[scales[0]]
        return m.display + (" (%)" if m.percent else "") + ("" if m.higher_is_better else " (lower is better)")
    return "Scores (each column's metric in its header; x100 except MSE, where lower is better)"


def published_markdown(rows: list[dict], metric_of: dict | None = None) -> str:
    """metric_of: task -> metric, to name it beside the task where the table is not all accuracy."""
    lines = ["| Model | Task | Published | Ours | Difference | Our 95% prediction interval for one run | "
             "Published inside it |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ours = f"{r['ours']:.2f}" + (f" ± {r['half']:.2f} (n={r['n']})" if r["half"] is not None else " (n=1)")
        if r["prediction_half"] is None:
            interval, inside = "none (1 seed)", "n/a"
        else:
            lo, hi = r["ours"] - r["prediction_half"], r["ours"] + r["prediction_half"]
            interval, inside = f"{lo:.2f} – {hi:.2f}", "yes" if r["published_inside_prediction"] else "**no**"
        task = md(r["task"]) if not metric_of else f"{md(r['task'])} ({metrics.METRICS[metric_of[r['task']]].display})"
        lines.append(f"| {md(r['display'])} | {task} | {r['published']:.2f} | {ours} | {r['difference']:+.2f} | "
                     f"{interval} | {inside} |")
    return "\n".join(lines)


PUBLISHED_LEGEND = ("The published number is one run: it is checked against the 95% prediction interval for one "
                    "new run of ours, mean ± t(n-1) · s · √(1 + 1/n), which a run from the same distribution as "
                    "our seeds falls outside 5% of the time. With one seed there is no interval and no flag.")


PUBLISHED_ELSEWHERE = ("Against the published table: `harness table --protocol published` (the paper picked its "
                       "epoch on the test split, so only our published protocol is comparable with it).")


def to_csv(table: Table, header: bool = True, metric_column: bool = False) -> str:
    """metric_column: a last column naming each row's metric (tables that are not all accuracy have it)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    if header:
        w.writerow(["variant", "protocol", "precision", "model", "column", "mean", "ci95_half", "n", "mark"]
                   + (["metric"] if metric_column else []))
    for row in table.rows:
        for col, _ in table.columns:
            c = row.cell(col)
            if c is not None:
                w.writerow([table.variant, table.protocol, table.precision, row.model, col, f"{c.mean:.4f}",
                            "" if c.half is None else f"{c.half:.4f}", c.n, table.marks.get((row.model, col), "")]
                           + ([table.score_of(col).scale] if metric_column else []))
    return buf.getvalue()


def to_latex(table: Table) -> str:
    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")

    lines = [f"% {heading(table)}", r"\begin{tabular}{l" + "c" * len(table.columns) + "}", r"\toprule",
             "Models & " + " & ".join(esc(d) for d in column_heads(table)) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = []
        for col, _ in table.columns:
            c = row.cell(col)
            text = "--" if c is None else "n/a" if math.isnan(c.mean) else (
                f"{c.mean:.2f}" if c.half is None else f"{c.mean:.2f} $\\pm$ {c.half:.2f}")
            mark = table.marks.get((row.model, col))
            cells.append({"best": rf"\textbf{{{text}}}", "tied": rf"\textit{{{text}}} $\approx$",
                          "untested": rf"{text}$^\dagger$"}.get(mark, text))
        lines.append(esc(row.display) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", "",
              r"\par\smallskip{\footnotesize " + _latex_legend(legend(table)) + "}"]
    return "\n".join(lines)


LATEX_SYMBOLS = {"≈": r"$\approx$", "†": r"$^\dagger$", "±": r"$\pm$", "²": r"$^2$", "≥": r"$\geq$", "√": r"$\surd$",
                 "·": r"$\cdot$", "–": "--"}


def _latex_legend(markdown: str) -> str:
    """The legend as LaTeX text: special characters escaped, symbols as math, markdown emphasis as LaTeX's (the
    marks' names in words: the table itself shows them bold and italic)."""
    text = markdown.replace("**Bold**", "Bold").replace("*Italic*", "Italic").replace("\\", r"\textbackslash{}")
    for ch in "_%&#{}$":
        text = text.replace(ch, "\\" + ch)
    for ch, tex in LATEX_SYMBOLS.items():
        text = text.replace(ch, tex)
    text = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", text)
    text = re.sub(r"\*(.+?)\*", r"\\textit{\1}", text)
    return re.sub(r"`(.+?)`", r"\\texttt{\1}", text)


def to_json_obj(table: Table, published: list[dict]) -> dict:
    return {"protocol": table.protocol, "variant": table.variant, "precision": table.precision,
            "columns": [c for c, _ in table.columns],
            "rows": [{"model": r.model, "display": r.display, **({"source": r.source} if r.source else {}),
                      "cells": {t: _cell_json(c) for t, c in r.cells.items()},
                      "average": _cell_json(r.average) if r.average else None} for r in table.rows],
            "marks": [{"model": m, "column": c, "mark": k} for (m, c), k in sorted(table.marks.items())],
            "legend": legend(table), "published_comparison": published,
            **({} if table.only_accuracy else {"metrics": {c: table.score_of(c).scale for c, _ in table.columns}})}


def _cell_json(cell: Score) -> dict:
    """A cell's numbers (not the predictions its marks were tested on)."""
    return {"mean": cell.mean, "half": cell.half, "n": cell.n, "values": cell.values, "seeds": cell.seeds}


def render(records, protocol: str, fmt: str, tasks: list[tuple[str, str]], models: list[tuple[str, str]],
           published: dict, scoring: dict | None = None) -> str:
    """The text of `harness table` in one format (markdown, csv, latex, json): one table per
    (variant, precision) group of the complete records given; never pooled across groups.
    published: task -> {model: figure in the column's units}; scoring: task -> ColumnScore (default accuracy)."""
    scoring = scoring_for(tasks, "accuracy", scoring)
    return render_scores(seed_scores(records, protocol, scoring=scoring), protocol, fmt, tasks, models, published,
                         scoring)


def render_scores(seed_values: list[SeedScore], protocol: str, fmt: str, tasks: list[tuple[str, str]],
                  models: list[tuple[str, str]], published: dict, scoring: dict | None = None,
                  notes: dict | None = None) -> str:
    """render() from per-seed scores (in the units of `scoring`), one table per (variant, precision) in the
    order they come. notes: variant -> markdown shown under its tables' legend (the tuned protocol's searches)."""
    by_group: dict = {}
    for s in seed_values:
        by_group.setdefault((s.variant, s.precision), []).append(s)
    parts, blobs = [], []
    metric_column = not all(c.scale == "accuracy" for c in scoring_for(tasks, "accuracy", scoring).values())
    for (variant, precision), values in by_group.items():
        table = table_of(values, protocol, tasks, models, variant, precision, scoring=scoring)
        note = (notes or {}).get(variant)
        # The published numbers picked their epoch on test: only our published protocol compares with them.
        cmp_rows = published_rows(table, published) if protocol == "published" else []
        if fmt == "markdown":
            title = heading(table)
            section = f"## {title[0].upper() + title[1:]}\n\n{to_markdown(table)}\n\n{legend(table)}\n"
            section += f"\n{note}\n" if note else ""
            if cmp_rows:
                named = None if table.only_accuracy else {t: table.score_of(t).metric for t, _ in table.task_columns}
                section += (f"\n### Against the published table\n\n{published_markdown(cmp_rows, named)}\n\n"
                            f"{PUBLISHED_LEGEND}\n")
            elif published_rows(table, published):
                section += f"\n{PUBLISHED_ELSEWHERE}\n"
            parts.append(section)
        elif fmt == "csv":
            parts.append(to_csv(table, header=not parts, metric_column=metric_column))
        elif fmt == "latex":
            text = to_latex(table)
            parts.append(f"{text}\n" if not note else f"{text}\n\\par{{\\footnotesize {_latex_legend(note)}}}\n")
        else:
            blobs.append({**to_json_obj(table, cmp_rows), **({"notes": note} if note else {})})
    if fmt == "json":
        return json.dumps(blobs, indent=1, ensure_ascii=False) + "\n"
    return "\n".join(parts)
