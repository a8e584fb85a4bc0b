"""Which tasks a table shows and what each column holds: a suite of tasks (specs.SUITES, or "all"),
each task's main metric unless one metric is asked for, raw or normalized. Pure functions over the
registry's TaskSpecs; table.py turns the result into the table."""
from __future__ import annotations

from dataclasses import dataclass

from harness import metrics
from harness.aggregate.table import ColumnScore
from harness.errors import UserError
from harness.registry.specs import ALL_SUITES, SUITES, TaskSpec

DEFAULT_SUITE = "ttl"


@dataclass
class Columns:
    tasks: list[tuple[str, str]]  # (name, display), in table order
    scoring: dict[str, ColumnScore]  # task name -> what its column holds
    published: dict[str, dict[str, float]]  # task name -> {model: published figure in the column's units}


def suite_tasks(tasks: dict[str, TaskSpec], suite: str) -> list[TaskSpec]:
    if suite == ALL_SUITES:
        return list(tasks.values())
    if suite not in SUITES:
        raise UserError(f"unknown suite '{suite}' (valid: {', '.join([*SUITES, ALL_SUITES])})")
    return [t for t in tasks.values() if suite in t.suites]


def column_score(task: TaskSpec, metric: str, normalized: bool) -> ColumnScore:
    return ColumnScore(metric=metric, normalized=normalized, baseline=task.baselines.get(metric),
                       best=task.max_scores.get(metric), num_classes=task.label.num_classes or None)


def table_columns(tasks: dict[str, TaskSpec], suite: str = DEFAULT_SUITE, metric: str | None = None,
                  normalized: bool = False, ran: set | None = None) -> Columns:
    """The columns of `harness table --suite S [--metric M] [--normalized]`: the suite's tasks, each showing
    its main metric (or M, leaving out the tasks that do not record M). ran: the tasks records have; a
    registered task no record has is no column (a task added to the registry does not take the Average away)."""
    if metric is not None and metric not in metrics.METRICS:
        raise UserError(f"unknown metric '{metric}' (valid: {', '.join(metrics.METRICS)})")
    chosen = suite_tasks(tasks, suite)
    if ran is not None:
        chosen = [t for t in chosen if t.name in ran]
    if metric is not None:
        chosen = [t for t in chosen if metric in t.metrics]
    if not chosen:
        what = f" that records {metric}" if metric else ""
        has = " has records" if ran is not None else ""
        raise UserError(f"no task in suite '{suite}'{what}{has}: see `harness list` for each task's suites and "
                        f"metrics, or try --suite all")
    scoring = {t.name: column_score(t, metric or t.main, normalized) for t in chosen}
    published = {t.name: t.reference_scores(scoring[t.name].metric) for t in chosen} if not normalized else {}
    return Columns(tasks=[(t.name, t.display_name) for t in chosen], scoring=scoring, published=published)


@dataclass
class Axes:
    """What one table shows: its columns (Columns), its rows, and the records and variants left for them."""
    columns: Columns
    rows: list[tuple[str, str]]  # (model name, display) of the model group, in registry order
    records: list
    variants: list[str]

    @property
    def tasks(self) -> list[tuple[str, str]]:
        return self.columns.tasks


def table_axes(tasks: dict[str, TaskSpec], models: dict, records: list, variants: list[str],
               suite: str | None = None, metric: str | None = None, normalized: bool = False,
               group: str | None = None) -> Axes:
    """Columns (the suite's tasks that records have; default suite ttl), the rows of the model group (default
    ttl: the TeenyTinyLlama table's), what each column shows (its task's main metric, or `metric`, raw or
    normalized); and the records and variants left for those rows and columns. Refuses a group none of whose
    models have records."""
    from harness.registry.load import table_models
    from harness.registry.specs import DEFAULT_GROUP

    rows, left_out = table_models(models, group or DEFAULT_GROUP)
    records = [r for r in records if r.model.name not in left_out]
    # A registered task no record has is no column: a task added to the registry does not take the
    # Average away from every row that has the others.
    cols = table_columns(tasks, suite or DEFAULT_SUITE, metric, normalized,
                         ran={r.task.name for r in records} if records else None)
    shown = {t for t, _ in cols.tasks}
    records = [r for r in records if r.task.name in shown]
    variants = [v for v in variants if any(r.variant == v for r in records)]
    if not variants:
        raise UserError(f"no complete records for the models of group '{group or DEFAULT_GROUP}': try --group all")
    return Axes(columns=cols, rows=rows, records=records, variants=variants)
