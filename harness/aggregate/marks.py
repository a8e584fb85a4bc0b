"""The marks of a table column: is its best cell better than every other, and which cells are not shown to be
worse than the best. The rule (the legend says it in words, harness/outputs/table_text.py):

- "best" (bold): the best mean (the highest; the lowest for MSE), significantly better than EVERY other cell
  of the column: a two-sided test, p < 0.05, against each. Two-sided because the best was picked as the
  better one: a one-sided test after that pick would call a tie "significant" 10% of the time, not 5%.
- "tied" (≈): every cell not significantly worse than the best, whatever its place in the ranking (one with the
  best's very mean, and one that cannot be tested: neither is shown to be worse); the best when it is not bold.
- "untested" (†): the best, where every test that could be done says it is better but some cell beside it
  cannot be tested (a cell with one seed; two cells whose seeds all scored the same, with no predictions).
- "undefined": a cell whose mean is not a number (a normalized score whose baseline is the best score); it
  takes no part in ranking or testing. A column with one model has no marks: there is nothing to be above.

The test is `harness compare`'s (stats.seed_aware_test), on the column's metric: the difference of the two
cells' means over seeds, with the variance from seed to seed and from test example to test example, so it
generalizes to new seeds and new test examples. It needs both cells' test predictions on one shared test set
(every complete record holds them) that reproduce the scores the cells show. Where they do not (records or a
DataFrame without predictions, records whose scores the predictions do not reproduce), the test is Welch's
t-test on the per-seed values: seed variance only, so it generalizes to new seeds, not to new test examples.
The Average column tests the difference of two rows' averages: the variance is the sum of the per-task
variances of the difference, over T^2, with Welch-Satterthwaite degrees of freedom.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from harness.aggregate import stats
from harness.aggregate.stats import ALPHA
from harness.record.predictions import decode_predictions

SEED_AWARE, WELCH = "seed-aware", "welch"


@dataclass(frozen=True)
class Contrast:
    """A tested difference between two cells, in the column's units: a.mean - b.mean, and its variance as
    independent (variance, dof) components."""
    difference: float
    components: tuple
    method: str  # SEED_AWARE or WELCH

    @property
    def p(self) -> float:
        return float(stats.t_test(self.difference, self.components)[2])


def contrast(a, b, column, task_type: str) -> Contrast | None:
    """The test of a - b for two task cells of one column (ColumnScore `column`); None where no test is
    possible (a cell with one seed; no spread to test with)."""
    if a.n < 2 or b.n < 2:
        return None
    runs = _shared_test_set(a, b)
    if runs is not None and _reproduced(a, column, task_type) and _reproduced(b, column, task_type):
        pred_a, pred_b, gold = runs
        result = _seed_aware(column.metric, task_type, pred_a, pred_b, gold)
        slope = column.slope(decode_predictions(gold, task_type)) ** 2  # the test in the column's units
        return Contrast(a.mean - b.mean, tuple((v * slope, d) for v, d in result.components), SEED_AWARE)
    var_a, var_b = np.var(a.values, ddof=1) / a.n, np.var(b.values, ddof=1) / b.n
    if var_a + var_b == 0:  # every seed of both scored the same: no spread to test a difference with
        return None
    return Contrast(a.mean - b.mean, ((float(var_a), a.n - 1), (float(var_b), b.n - 1)), WELCH)


def _shared_test_set(a, b):
    """(predictions of a, of b, gold) as stored text, where every seed of both holds its predictions and all
    share one test set; else None."""
    runs = a.runs + b.runs
    if len(a.runs) != a.n or len(b.runs) != b.n or not all(pred and gold for _, pred, gold in runs):
        return None
    gold = runs[0][2]
    if any(g != gold for _, _, g in runs):
        return None
    return tuple(p for _, p, _ in a.runs), tuple(p for _, p, _ in b.runs), gold


def _reproduced(cell, column, task_type: str) -> bool:
    """Whether the stored predictions give the scores the cell shows (a record's own, always: it computed them
    so; a foreign or hand-made record perhaps not). The test must read the numbers the table shows."""
    return all(raw is not None and _recomputes(column.metric, task_type, pred, gold, raw) for raw, pred, gold in
               cell.runs)


@functools.lru_cache(maxsize=65536)
def _recomputes(metric: str, task_type: str, pred: str, gold: str, raw: float) -> bool:
    from harness import metrics

    # metrics.batched: the same numbers as the metric's own function (tests check), without sklearn's checks
    score = float(metrics.batched(metric, decode_predictions(pred, task_type), decode_predictions(gold, task_type))[0])
    return math.isclose(score, raw, rel_tol=1e-6, abs_tol=1e-9)


@functools.lru_cache(maxsize=4096)
def _seed_aware(metric: str, task_type: str, pred_a: tuple, pred_b: tuple, gold: str):
    """stats.seed_aware_test on stored predictions; cached: a table and its report test the same pairs again."""
    decode = functools.partial(decode_predictions, task_type=task_type)
    return stats.seed_aware_test(np.stack([decode(p) for p in pred_a]), np.stack([decode(p) for p in pred_b]),
                                 decode(gold), stats.scorer(metric))


def average_contrast(a, b, columns: list, task_type_of: dict) -> Contrast | None:
    """The test of a - b for two Average cells (their parts: task cells in column order): the per-task
    contrasts' variances added, over T^2. None where a task's pair cannot be tested."""
    tasks = len(a.parts)
    parts = [contrast(x, y, col, task_type_of.get(name, "classification"))
             for x, y, (name, col) in zip(a.parts, b.parts, columns, strict=True)]
    if any(c is None for c in parts):
        return None
    components = tuple((v / tasks ** 2, d) for c in parts for v, d in c.components)
    methods = {c.method for c in parts}
    return Contrast(a.mean - b.mean, components, SEED_AWARE if methods == {SEED_AWARE} else WELCH)


def mark_column(table, col: str) -> dict:
    """The marks of one column of a table.Table (see the module docstring); records in table.tests which
    tests it used."""
    present = [(r.model, r.cell(col)) for r in table.rows if r.cell(col) is not None]
    marks = {(m, col): "undefined" for m, c in present if math.isnan(c.mean)}
    ranked = [(m, c) for m, c in present if not math.isnan(c.mean)]
    if len(ranked) < 2:
        return marks
    sign = 1 if table.score_of(col).higher_is_better else -1  # MSE: the lowest is the best
    ranked.sort(key=lambda mc: -sign * mc[1].mean)
    (best_model, best), others = ranked[0], ranked[1:]
    worse, untested = set(), set()
    for model, cell in others:
        if math.isclose(cell.mean, best.mean, rel_tol=0, abs_tol=1e-9):  # the same number: a tie, no test needed
            continue
        tested = _contrast(table, col, best, cell)
        if tested is None:
            untested.add(model)
            continue
        table.tests.add(tested.method)
        if tested.p < ALPHA and sign * tested.difference > 0:
            worse.add(model)
    if len(worse) == len(others):
        return {**marks, (best_model, col): "best"}
    marks[(best_model, col)] = "untested" if len(worse) + len(untested) == len(others) else "tied"
    marks.update({(model, col): "tied" for model, _ in others if model not in worse})
    return marks


def _contrast(table, col: str, a, b) -> Contrast | None:
    if col != "average":
        return contrast(a, b, table.score_of(col), table.task_types.get(col, "classification"))
    columns = [(t, table.score_of(t)) for t, _ in table.task_columns]
    return average_contrast(a, b, columns, table.task_types)
