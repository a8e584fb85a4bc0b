"""The comparison table: pure aggregation of records into cells (rendering: harness/outputs/table_text.py).

build_table() turns records (one variant, one precision) into rows (models) x columns (tasks + Average);
each cell is the mean over seeds with a 95% t half-width of that mean; the Average is the mean of the row's
task means. The marks of each column (bold, ≈, †) come from harness/aggregate/marks.py, which tests the same
numbers the cells show.

Each column reads one metric from the records (ColumnScore: the table's metric, accuracy by default, or per
task, e.g. its main metric), raw or normalized against a trivial baseline; lower-is-better metrics (MSE) rank
the other way. The Average column exists where the columns share one scale (one metric, or all normalized).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness import metrics
from harness.aggregate import stats
from harness.aggregate.marks import mark_column
from harness.record.predictions import decode_predictions
from harness.redact import shared_source

# The metrics the report and `harness plot` switch between (classification tasks record both), in display order.
METRICS = {"accuracy": "Accuracy", "macro_f1": "Macro-F1"}


@dataclass(frozen=True)
class ColumnScore:
    """How one column turns a record's test score into the number it shows: the metric in table units (% for
    the percent metrics), or with `normalized` 100 x (score - baseline) / (best - baseline); baseline and best
    are the task's declared ones, else the metric's trivial baseline on the record's own test labels
    (metrics.trivial_baseline) and its perfect score."""
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

    def shown(self, value: float, trivial: float | None) -> float:
        """value: the metric as recorded; trivial: its derived baseline (used where none is declared)."""
        if not self.normalized:
            return metrics.shown(self.metric, value)
        baseline = self.baseline if self.baseline is not None else trivial
        best = self.best if self.best is not None else metrics.METRICS[self.metric].best
        return 100.0 * metrics.normalized(value, baseline, best)

    def slope(self, gold) -> float:
        """How much the shown number moves per unit of the metric (shown() is affine in the metric): x100 for the
        percent metrics, 100 / (best - baseline) normalized. gold: the test labels, for a derived baseline."""
        trivial = self._trivial(gold)
        return self.shown(1.0, trivial) - self.shown(0.0, trivial)

    def _trivial(self, gold) -> float | None:
        if not self.normalized or self.baseline is not None:
            return None
        return metrics.trivial_baseline(self.metric, gold, self.num_classes)

    def of(self, record, protocol: str) -> float | None:
        result = record.protocols.get(protocol)
        if result is None or self.metric not in result.test:
            return None
        trivial = self._trivial(decode_predictions(record.test_labels, record.task.type)) if self.normalized \
            else None
        return self.shown(result.test[self.metric], trivial)


def scoring_for(tasks: list[tuple[str, str]], metric: str, scoring: dict | None) -> dict:
    """task -> ColumnScore: as given, else the table's one metric, raw."""
    return {t: (scoring or {}).get(t, ColumnScore(metric)) for t, _ in tasks}


@dataclass
class Score:
    """One cell. A task cell: the mean of its per-seed values; the Average: the mean of its row's task cells
    (parts), with no per-seed values of its own."""
    mean: float  # what is shown and ranked
    half: float | None  # 95% half-width of the mean; None with one seed (Average: a task with one seed)
    n: int  # seeds (Average: the fewest of any task)
    values: list[float]  # per seed, in the column's units (the Average: none)
    seeds: list[int] = field(default_factory=list)
    runs: list = field(default_factory=list)  # per seed: (raw metric value, test predictions as stored, test labels)
    parts: list = field(default_factory=list)  # the Average: the row's task cells, in column order


@dataclass
class Row:
    model: str
    display: str
    cells: dict  # task name -> Score (absent: not run)
    average: Score | None = None
    source: str | None = None  # where an unregistered (local) model came from; the legend names it

    def cell(self, col: str) -> Score | None:
        """The cell of a task column, or of "average"."""
        return self.average if col == "average" else self.cells.get(col)


@dataclass
class Table:
    protocol: str
    variant: str
    columns: list  # [(task name, display name)], then "average"
    rows: list
    marks: dict = field(default_factory=dict)  # (model, column) -> "best" | "tied" | "untested" | "undefined"
    tests: set = field(default_factory=set)  # the tests the marks used: "seed-aware", "welch" (marks.py)
    task_types: dict = field(default_factory=dict)  # task name -> "classification" | "regression"
    precision: str = ""  # what the records were computed in, e.g. "fp32 (cpu)": never pooled across
    metric: str = "accuracy"  # the metric of every column unless scoring says otherwise
    scoring: dict = field(default_factory=dict)  # task name -> ColumnScore (absent: `metric`, raw)

    def score_of(self, col: str) -> ColumnScore:
        if col == "average":
            return next(iter(self.scoring.values())) if self.scoring else ColumnScore(self.metric)
        return self.scoring.get(col, ColumnScore(self.metric))

    @property
    def task_columns(self) -> list:
        return [c for c in self.columns if c[0] != "average"]

    @property
    def scales(self) -> list[str]:
        """The distinct scales of the task columns, in column order."""
        return list(dict.fromkeys(self.score_of(t).scale for t, _ in self.task_columns))

    @property
    def only_accuracy(self) -> bool:
        """Every column raw accuracy: the published table's format, printed as it always was."""
        return self.scales in ([], ["accuracy"])


@dataclass(frozen=True)
class SeedScore:
    """One seed's number for one (variant, precision, model, task): what a table is built from."""
    variant: str
    model: str
    model_display: str
    task: str
    seed: int
    value: float  # in table units (% for the percent metrics; see ColumnScore)
    precision: str = ""  # the group's label, e.g. "fp32 (cpu)" (selection.Group.label)
    # hub id, package:<module>, or a local folder's name and weights hash (redact.shared_source); the legend names
    # an unregistered model's
    model_source: str = ""
    raw: float | None = None  # the metric as recorded (the value before ColumnScore.shown)
    task_type: str = "classification"  # how its predictions and labels are stored
    predictions: str = ""  # the test predictions the value was computed from, as the record stores them
    gold: str = ""  # the record's test labels, as stored


def record_score(record, protocol: str, metric: str = "accuracy", scoring: ColumnScore | None = None) -> float | None:
    """The record's test score under this protocol in table units; None where it has none (no result under
    the protocol, or a metric its task does not record, e.g. accuracy of a regression task)."""
    return (scoring or ColumnScore(metric)).of(record, protocol)


def cell_of(pairs: list[tuple]) -> Score:
    """A task cell from (seed, value) pairs, or (seed, value, (raw, predictions, gold)) where the test
    predictions are known (the marks then test them as `harness compare` does)."""
    pairs = sorted(pairs, key=lambda p: p[0])
    values = [p[1] for p in pairs]
    mean, half, n = stats.mean_ci(values)
    runs = [p[2] for p in pairs] if pairs and all(len(p) > 2 for p in pairs) else []
    return Score(mean=mean, half=half, n=n, values=values, seeds=[p[0] for p in pairs], runs=runs)


def average_cell(cells: list[Score]) -> Score:
    """The mean of the task cells' means: the number a row's Average shows is the mean of the numbers in the
    row. Its interval takes each task's seed variance, var = sum(s_t^2 / n_t) / T^2, with Welch-Satterthwaite
    degrees of freedom, so no seed of any task is dropped; none where a task has one seed."""
    tasks = len(cells)
    mean = sum(c.mean for c in cells) / tasks
    components = [(float(np.var(c.values, ddof=1)) / c.n / tasks ** 2, c.n - 1) for c in cells if c.n >= 2]
    half = None
    if len(components) == tasks:
        _, half, _ = stats.t_test(0.0, components)
        half = float(half)
    return Score(mean=mean, half=half, n=min(c.n for c in cells), values=[], seeds=[], parts=list(cells))


def seed_scores(records, protocol: str, metric: str = "accuracy", scoring: dict | None = None) -> list[SeedScore]:
    """One SeedScore per record with a result under this protocol, labelled with its (variant, precision) group.
    scoring: task -> ColumnScore (default: `metric`, raw)."""
    from harness.aggregate.groups import groups

    def score(r):
        return record_score(r, protocol, metric, (scoring or {}).get(r.task.name))

    def run(r, column: ColumnScore):
        result = r.protocols[protocol]
        return dict(raw=result.test[column.metric], gold=r.test_labels, task_type=r.task.type,
                    predictions=r.fits[result.fit].epochs[result.epoch - 1].test_predictions)

    return [SeedScore(r.variant, r.model.name, r.model.display_name, r.task.name, r.seed, value, g.label,
                      shared_source(r.model.source, r.model.weights_fingerprint),
                      **run(r, (scoring or {}).get(r.task.name) or ColumnScore(metric)))
            for g in groups(records) for r in g.records if (value := score(r)) is not None]


def build_table(records, protocol: str, tasks: list[tuple[str, str]], models: list[tuple[str, str]],
                variant: str = "default", precision: str = "", metric: str = "accuracy",
                scoring: dict | None = None) -> Table:
    """records: complete RunRecords of one variant and one precision. tasks/models: (name, display) in
    display order; models seen in records but not listed are appended. metric: a metric of harness/metrics.py,
    shown in every column; scoring: task -> ColumnScore, per column instead."""
    if metric not in metrics.METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(metrics.METRICS)})")
    scoring = scoring_for(tasks, metric, scoring)
    return table_of(seed_scores(records, protocol, metric, scoring), protocol, tasks, models, variant, precision,
                    metric, scoring)


def table_of(seed_values: list[SeedScore], protocol: str, tasks: list[tuple[str, str]],
             models: list[tuple[str, str]], variant: str = "default", precision: str = "",
             metric: str = "accuracy", scoring: dict | None = None) -> Table:
    """The table of one (variant, precision) group from its per-seed scores (records, or a results
    DataFrame: harness/results.py), in the units `scoring` says (default: `metric`, raw)."""
    scoring = scoring_for(tasks, metric, scoring)
    scores: dict = {}
    displays, sources, task_types = dict(models), {}, {}
    for s in seed_values:
        task_types[s.task] = s.task_type
        scores.setdefault(s.model, {}).setdefault(s.task, []).append((s.seed, s.value, (s.raw, s.predictions, s.gold)))
        displays.setdefault(s.model, s.model_display)
        if s.model not in dict(models) and s.model_source:
            sources[s.model] = s.model_source
    order = [m for m, _ in models if m in scores] + sorted(m for m in scores if m not in dict(models))
    shown = [displays[m] for m in order]
    for m in sources:  # two local folders of the same name: their rows show the unique names instead
        if shown.count(displays[m]) > 1:
            displays[m] = m
    task_names = [t for t, _ in tasks]
    averaged = len({c.scale for c in scoring.values()}) <= 1  # an Average of different metrics means nothing
    rows = []
    for m in order:
        cells = {t: cell_of(v) for t, v in scores[m].items() if t in task_names}
        # The Average of a row that has every task (a missing task would change what the number means).
        avg = average_cell([cells[t] for t in task_names]) if averaged and task_names \
            and all(t in cells for t in task_names) else None
        rows.append(Row(model=m, display=displays[m], cells=cells, average=avg, source=sources.get(m)))
    columns = list(tasks) + ([("average", "Average")] if averaged else [])
    table = Table(protocol=protocol, variant=variant, columns=columns, rows=rows, precision=precision, metric=metric,
                  scoring=scoring, task_types=task_types)
    for col, _ in table.columns:
        table.marks.update(mark_column(table, col))
    return table


def baselines(table: Table, records) -> dict[str, float]:
    """Per column, what a predictor that never reads the text scores on the metric the column shows, in its
    units: 0 for a normalized column; else the task's declared baseline, or the metric's trivial baseline on the
    records' test labels (metrics.trivial_baseline; their mean where records of one task hold other test sets).
    The Average column's, where there is one, is the mean of its tasks'. A reference for every view of scores:
    a model at its baseline learned nothing."""
    out = {}
    for task, _ in table.task_columns:
        score = table.score_of(task)
        if score.normalized:
            out[task] = 0.0
            continue
        if score.baseline is not None:
            out[task] = metrics.shown(score.metric, score.baseline)
            continue
        values = [metrics.trivial_baseline(score.metric, decode_predictions(r.test_labels, r.task.type),
                                           score.num_classes or _classes(r))
                  for r in records if r.task.name == task and r.test_labels]
        if values:
            out[task] = metrics.shown(score.metric, sum(values) / len(values))
    if any(c == "average" for c, _ in table.columns) and table.task_columns \
            and all(t in out for t, _ in table.task_columns):
        out["average"] = sum(out[t] for t, _ in table.task_columns) / len(table.task_columns)
    return out


def _classes(record) -> int | None:
    """The number of classes a record's task declares (None: unknown, then taken from the labels)."""
    return len(((record.task.definition or {}).get("label") or {}).get("names") or []) or None


def published_rows(table: Table, published: dict) -> list[dict]:
    """published: task -> {model: figure in the column's units}. One row per (model, task) with both numbers.
    The published number is one run, so it is checked against our 95% prediction interval for one new run
    (mean ± t * s * sqrt(1 + 1/n)), not the interval of our mean; with one seed there is no interval."""
    out = []
    for row in table.rows:
        for task, _ in table.task_columns:
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
