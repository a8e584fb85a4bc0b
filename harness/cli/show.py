"""The commands that show records: `harness table`, `compare`, `plot` and `report`. They share how records
are found (complete ones, of the variants asked for) and which rows and columns a table has."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.errors import UserError

RESULTS_ENV = "HARNESS_RESULTS"


def results_dir(args) -> Path:
    return Path(args.results or os.environ.get(RESULTS_ENV) or "results")


def _complete_records(results: Path, variant: str | None):
    """Complete records (warnings for unreadable and failed ones) and the variants to show."""
    from harness.record.store import scan

    if not results.is_dir():
        raise UserError(f"no results folder '{results}': run `harness run` first or pass --results DIR")
    records, warnings = scan(results)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for r in records:
        if r.status != "complete":
            print(f"warning: failed run not tabulated: {r.task.name}/{r.model.name} seed {r.seed} "
                  f"({r.variant}): {r.failure}", file=sys.stderr)
    records = [r for r in records if r.status == "complete"]
    variants = sorted({r.variant for r in records}, key=lambda v: (v != "default", v))
    if variant:
        if variant not in variants:
            raise UserError(f"no records of variant '{variant}' (found: {', '.join(variants) or 'none'})")
        variants = [variant]
    if not variants:
        raise UserError(f"no complete records under '{results}': run `harness run` first")
    return records, variants


def _table_axes(group: str | None = None, records: list | None = None, variants: list | None = None,
                suite: str | None = None, metric: str | None = None, normalized: bool = False):
    """Columns (the suite's tasks that records have; default suite ttl), the rows of the model group (default
    ttl: the TeenyTinyLlama table's), the published numbers in each column's units, what each column shows
    (its task's main metric, or `metric`, raw or normalized: suites.table_columns); and the records and
    variants left for those rows and columns."""
    from harness.aggregate.columns import DEFAULT_SUITE, table_columns
    from harness.registry.load import load_models, load_tasks, table_models
    from harness.registry.specs import DEFAULT_GROUP

    tasks, models = load_tasks(), load_models()
    group = group or DEFAULT_GROUP
    rows, left_out = table_models(models, group)
    records = [r for r in records or [] if r.model.name not in left_out]
    # A registered task no record has is no column: a task added to the registry does not take the
    # Average away from every row that has the others.
    cols = table_columns(tasks, suite or DEFAULT_SUITE, metric, normalized,
                         ran={r.task.name for r in records} if records else None)
    shown = {t for t, _ in cols.tasks}
    records = [r for r in records if r.task.name in shown]
    variants = [v for v in variants or [] if any(r.variant == v for r in records)]
    return cols.tasks, rows, cols.published, records, variants, cols.scoring


def _rows_of_group(args, records: list, variants: list):
    """_table_axes for commands that show records: refuses a group none of whose models have records."""
    group = getattr(args, "group", None)
    tasks, rows, published, records, variants, scoring = _table_axes(
        group, records, variants, getattr(args, "suite", None), getattr(args, "metric", None),
        bool(getattr(args, "normalized", False)))
    if not variants:
        raise UserError(f"no complete records for the models of group '{group or 'ttl'}': try --group all")
    return tasks, rows, published, records, variants, scoring


def cmd_table(args, argv) -> int:
    from harness import results as results_api
    from harness.files import write_atomic
    from harness.outputs import table_files

    results = results_dir(args)
    records, variants = _complete_records(results, args.variant)
    if getattr(args, "cost", False):  # the sweep's closing table passes no --cost
        return _cost_table(args, results, [r for r in records if r.variant in variants])
    tasks, rows, published, records, variants, scoring = _rows_of_group(args, records, variants)
    text = results_api.table(results_api.frame(records), args.protocol, args.format, variants, tasks, rows, published,
                             scoring)
    if args.format == "markdown":
        text += f"\n{table_files.footer(records, args.variant)}\n"
    out = Path(args.output) if args.output else table_files.default_path(results, args.protocol, args.variant,
                                                                          args.format)
    sys.stdout.write(text)
    try:
        write_atomic(out, text)
        if not args.output:
            table_files.remember(results, out, args.protocol, args.variant, args.format, records)
    except OSError as exc:
        raise UserError(f"cannot write the table to '{out}': {exc.strerror}") from None
    print(f"(written to {out})", file=sys.stderr)
    for w in table_files.stale(results, records):
        print(f"warning: {w}", file=sys.stderr)
    return 0


def _cost_table(args, results: Path, records) -> int:
    from harness.files import write_atomic
    from harness.outputs import cost_table as cost

    text = cost.render(cost.cost_rows(records), args.format)
    out = Path(args.output) if args.output else results / f"table-cost.{cost.EXTENSIONS[args.format]}"
    sys.stdout.write(text)
    try:
        write_atomic(out, text)
    except OSError as exc:
        raise UserError(f"cannot write the table to '{out}': {exc.strerror}") from None
    print(f"(written to {out})", file=sys.stderr)
    return 0


def cmd_compare(args, argv) -> int:
    from harness.aggregate.compare import compare_models
    from harness.record.store import scan

    results = results_dir(args)
    records, warnings = scan(results) if results.is_dir() else ([], [])
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(compare_models(records, args.task, args.models[0], args.models[1], args.protocol, args.variant,
                         args.metric))
    return 0


def cmd_plot(args, argv) -> int:
    from harness.aggregate import pooling
    from harness.aggregate.table import build_table
    from harness.outputs.plot import plot_table
    from harness.results import frame

    results = results_dir(args)
    records, variants = _complete_records(results, args.variant)
    task_cols, model_rows, published, records, variants, scoring = _rows_of_group(args, records, variants)
    variant = variants[0]
    records = [r for r in records if r.variant == variant]
    pooling.check(frame(records))
    table = build_table(records, args.protocol, task_cols, model_rows, variant, metric=args.metric or "accuracy",
                        scoring=scoring)
    suffix = "" if args.metric in (None, "accuracy") else f"-{args.metric}"
    out = Path(args.output) if args.output else results / f"plot-{args.protocol}-{variant}{suffix}.png"
    print(plot_table(table, published, out))  # published: each column's own metric's figures (suites.py)
    return 0


def cmd_report(args, argv) -> int:
    from harness.files import write_atomic
    from harness.outputs.report import render_report

    results = results_dir(args)
    records, variants = _complete_records(results, None)
    task_cols, model_rows, published, records, _, _ = _rows_of_group(args, records, variants)
    out = Path(args.output) if args.output else results / "report.html"
    html = render_report(records, task_cols, model_rows, published, results)
    try:
        write_atomic(out, html)
    except OSError as exc:
        raise UserError(f"cannot write the report to '{out}': {exc.strerror}") from None
    print(out)
    return 0
