"""Which tasks a table shows and what each column holds: a suite of tasks (specs.SUITES, or "all"),
each task's main metric unless one metric is asked for, raw or normalized. Pure functions over the
registry's TaskSpecs; table.py turns the result into the table."""
from __future__ import annotations

from dataclasses import dataclass, field

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
        with_records = suites_with(tasks, ran) if ran is not None else []
        hint = (f"the suites with records: {', '.join(with_records)} (--suite NAME), or --suite all" if with_records
                else "see `harness list` for each task's suites and metrics, or try --suite all")
        raise UserError(f"no task in suite '{suite}'{what}{has}: {hint}")
    scoring = {t.name: column_score(t, metric or t.main, normalized) for t in chosen}
    published = {t.name: t.reference_scores(scoring[t.name].metric) for t in chosen} if not normalized else {}
    return Columns(tasks=[(t.name, t.display_name) for t in chosen], scoring=scoring, published=published)


def suites_with(tasks: dict[str, TaskSpec], ran: set[str]) -> list[str]:
    """The suites holding a task that has records (ran: task names), in SUITES' order."""
    return [s for s in SUITES if any(s in tasks[t].suites for t in ran if t in tasks)]


def default_suite(tasks: dict[str, TaskSpec], ran: set[str]) -> tuple[str, str | None]:
    """The suite a table shows when none is named, and a note where that is not DEFAULT_SUITE: when none of its
    tasks has records (the demo's ASSIN records, say), the one suite that holds every task with records, else
    all; never an error for records that exist."""
    if not ran or any(DEFAULT_SUITE in tasks[t].suites for t in ran if t in tasks):
        return DEFAULT_SUITE, None
    registered = {t for t in ran if t in tasks}
    whole = [s for s in suites_with(tasks, ran) if all(s in tasks[t].suites for t in registered)]
    chosen = whole[0] if whole else ALL_SUITES
    return chosen, (f"no task of the default suite '{DEFAULT_SUITE}' has records: showing suite '{chosen}', "
                    f"where they are (--suite NAME for another: {', '.join([*suites_with(tasks, ran), ALL_SUITES])})")


@dataclass
class Axes:
    """What one table shows: its columns (Columns), its rows, the variants left for them, and which (task,
    model) records go in (shows). note: what the reader should know about the choice (a default that fell
    back), or None."""
    columns: Columns
    rows: list[tuple[str, str]]  # (model name, display) of the model group, in registry order
    variants: list[str]
    left_out: set[str]  # registered models of other groups
    note: str | None = None
    records: list = field(default_factory=list)  # the RunRecords shown, where the caller keeps them (keep)

    @property
    def tasks(self) -> list[tuple[str, str]]:
        return self.columns.tasks

    def shows(self, task: str, model: str) -> bool:
        return model not in self.left_out and task in self.columns.scoring

    def keep(self, records: list) -> list:
        """The records this table shows (RunRecords)."""
        return [r for r in records if self.shows(r.task.name, r.model.name)]


def table_axes(tasks: dict[str, TaskSpec], models: dict, keys, variants: list[str], suite: str | None = None,
               metric: str | None = None, normalized: bool = False, group: str | None = None) -> Axes:
    """Columns (the suite's tasks that records have; default suite ttl, or where the records are when it has
    none: default_suite), the rows of the model group (default ttl: the TeenyTinyLlama table's), what each column
    shows (its task's main metric, or `metric`, raw or normalized); and the variants left for those rows and
    columns. keys: (task, model, variant) of every record (RunRecords and DataFrames alike give them). Refuses a
    group none of whose models have records."""
    from harness.registry.load import table_models
    from harness.registry.specs import DEFAULT_GROUP

    rows, left_out = table_models(models, group or DEFAULT_GROUP)
    keys = [k for k in keys if k[1] not in left_out]
    ran = {t for t, _, _ in keys}
    note = None
    if suite is None:
        suite, note = default_suite(tasks, ran)
    # A registered task no record has is no column: a task added to the registry does not take the
    # Average away from every row that has the others.
    cols = table_columns(tasks, suite, metric, normalized, ran=ran if keys else None)
    variants = [v for v in variants if any(var == v and t in cols.scoring for t, _, var in keys)]
    if not variants:
        raise UserError(f"no complete records for the models of group '{group or DEFAULT_GROUP}': try --group all")
    return Axes(columns=cols, rows=rows, variants=variants, left_out=left_out, note=note)
