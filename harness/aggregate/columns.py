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
