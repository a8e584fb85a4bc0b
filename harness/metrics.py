"""Metrics: the scores a task declares, computed from predictions with scikit-learn and scipy. Pure functions.

Every metric takes (predictions, gold) of one split and returns a float. METRICS says which task type it fits,
which way is better, its perfect score, and how a table shows it. Values are kept as the libraries return them
(fractions for accuracy and F1, correlations in [-1, 1], MSE in squared label units); tables multiply the
`percent` ones by 100.

Trivial baselines (for normalized scores, `harness table --normalized`), each the score of a predictor that
never reads the text, computed from the test labels:
- classification: the better of two such predictors, always the majority class (its exact score) and uniform
  random guessing over the k classes (its expected score, from the expected confusion counts n_c / k per
  cell). That gives: accuracy = the majority share; macro-F1 = max(mean_c 2p_c / (1 + k p_c), the
  majority's macro-F1), which is 1/k on balanced classes; weighted-F1 likewise; MCC = 0.
- regression: zero correlation (Pearson, Spearman = 0) and, for MSE, always predicting the test mean
  (MSE = the variance of the test labels, the lowest a constant prediction can reach).
A task YAML may declare its own (`baselines:`), which wins.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

TASK_TYPES = ("classification", "regression")


# ------------------------------------------------------------------ the metrics

def accuracy(pred, gold) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(gold, pred)) if len(gold) else float("nan")


def macro_f1(pred, gold) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or predictions (sklearn's labels=None);
    a class only predicted counts with F1 = 0 (zero_division=0 only decides 0/0 precision or recall)."""
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, average="macro", zero_division=0)) if len(gold) else float("nan")


def weighted_f1(pred, gold) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, average="weighted", zero_division=0)) if len(gold) else float("nan")


def mcc(pred, gold) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(gold, pred)) if len(gold) else float("nan")


def pearson(pred, gold) -> float:
    """Pearson's r. A constant prediction (or gold) carries no linear information: 0, as sklearn's MCC does
    for a constant classifier (scipy would return NaN and warn, and NaN cannot pick an epoch)."""
    from scipy.stats import pearsonr

    return _correlation(pearsonr, pred, gold)


def spearman(pred, gold) -> float:
    """Spearman's rank correlation; a constant side gives 0, as for Pearson."""
    from scipy.stats import spearmanr

    return _correlation(spearmanr, pred, gold)


def _correlation(test, pred, gold) -> float:
    pred, gold = np.asarray(pred, dtype=float), np.asarray(gold, dtype=float)
    if len(gold) < 2 or np.ptp(pred) == 0 or np.ptp(gold) == 0:
        return 0.0 if len(gold) >= 2 else float("nan")
    return float(test(pred, gold).statistic)


def mse(pred, gold) -> float:
    from sklearn.metrics import mean_squared_error

    return float(mean_squared_error(gold, pred)) if len(gold) else float("nan")


@dataclass(frozen=True)
class Metric:
    name: str
    display: str  # as tables and legends name it
    task_type: str  # "classification" or "regression"
    fn: Callable
    higher_is_better: bool = True
    best: float = 1.0  # the perfect score
    percent: bool = True  # tables show 100 x the value


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", "Accuracy", "classification", accuracy),
    Metric("macro_f1", "Macro-F1", "classification", macro_f1),
    Metric("mcc", "MCC", "classification", mcc),
    Metric("weighted_f1", "Weighted-F1", "classification", weighted_f1),
    Metric("pearson", "Pearson", "regression", pearson),
    Metric("spearman", "Spearman", "regression", spearman),
    Metric("mse", "MSE", "regression", mse, higher_is_better=False, best=0.0, percent=False),
)}

DEFAULT_METRICS = {"classification": ("accuracy", "macro_f1", "mcc", "weighted_f1"),
                   "regression": ("pearson", "spearman", "mse")}
DEFAULT_MAIN = {"classification": "accuracy", "regression": "pearson"}


def fits(metric: str, task_type: str) -> bool:
    return metric in METRICS and METRICS[metric].task_type == task_type


def compute(names, pred, gold) -> dict[str, float]:
    """{metric: value} for each named metric, in the order given."""
    return {n: METRICS[n].fn(pred, gold) for n in names}


def rank_key(metric: str, value: float) -> float:
    """Larger is better, whichever way the metric runs (for picking epochs and ranking models)."""
    return value if METRICS[metric].higher_is_better else -value


def shown(metric: str, value: float) -> float:
    """The value as tables show it: x100 for the percent metrics."""
    return 100.0 * value if METRICS[metric].percent else value


# ------------------------------------------------------------------ baselines and normalized scores

def trivial_baseline(metric: str, gold, num_classes: int | None = None) -> float:
    """The score of a predictor that never reads the text (see the module docstring for each rule)."""
    gold = np.asarray(gold)
    m = METRICS[metric]
    if m.task_type == "regression":
        return float(np.var(gold.astype(float))) if metric == "mse" else 0.0
    k = num_classes or int(gold.max()) + 1
    values, counts = np.unique(gold, return_counts=True)
    majority = m.fn(np.full(len(gold), values[np.argmax(counts)]), gold)
    p = np.bincount(gold.astype(int), minlength=k)[:k] / len(gold)
    f1_uniform = 2 * p / (1 + k * p)  # per class, from the expected counts of uniform guessing
    uniform = {"accuracy": 1.0 / k, "macro_f1": float(f1_uniform.mean()),
               "weighted_f1": float((p * f1_uniform).sum()), "mcc": 0.0}[metric]
    return float(max(majority, uniform))


def normalized(value: float, baseline: float, best: float) -> float:
    """(score - baseline) / (best - baseline): 0 at the baseline, 1 at the perfect score; the same formula
    serves a lower-is-better metric (MSE: best 0, baseline above it)."""
    if best == baseline:
        return float("nan")
    return (value - baseline) / (best - baseline)


# ------------------------------------------------------------------ many resamples at once

def batched(metric: str, pred: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """The metric of each row of (rounds, n) arrays (bootstrap resamples of one split), in numpy, at once:
    thousands of resamples cost what a few calls of the per-split functions cost. The same values as those
    (tests check each against them), including their edge cases (classes absent from a resample are left
    out of macro-F1; a constant row correlates 0)."""
    pred, gold = np.atleast_2d(pred), np.atleast_2d(gold)
    if METRICS[metric].task_type == "classification":
        return _batched_classification(metric, pred.astype(np.int64), gold.astype(np.int64))
    pred, gold = pred.astype(float), gold.astype(float)
    if metric == "mse":
        return np.mean((pred - gold) ** 2, axis=1)
    if metric == "spearman":
        from scipy.stats import rankdata

        pred, gold = rankdata(pred, axis=1), rankdata(gold, axis=1)
    pc, gc = pred - pred.mean(axis=1, keepdims=True), gold - gold.mean(axis=1, keepdims=True)
    den = np.sqrt((pc ** 2).sum(axis=1) * (gc ** 2).sum(axis=1))
    constant = (np.ptp(pred, axis=1) == 0) | (np.ptp(gold, axis=1) == 0)
    return np.where(constant, 0.0, (pc * gc).sum(axis=1) / np.where(constant, 1.0, den))


def _batched_classification(metric: str, pred: np.ndarray, gold: np.ndarray) -> np.ndarray:
    rounds, n = gold.shape
    k = int(max(pred.max(), gold.max())) + 1
    codes = (np.arange(rounds)[:, None] * k + gold) * k + pred
    cm = np.bincount(codes.ravel(), minlength=rounds * k * k).reshape(rounds, k, k)  # [round, gold, predicted]
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(float)
    support, predicted = cm.sum(axis=2).astype(float), cm.sum(axis=1).astype(float)
    if metric == "accuracy":
        return tp.sum(axis=1) / n
    if metric == "mcc":
        num = tp.sum(axis=1) * n - (support * predicted).sum(axis=1)
        den = np.sqrt((n ** 2 - (predicted ** 2).sum(axis=1)) * (n ** 2 - (support ** 2).sum(axis=1)))
        return np.where(den == 0, 0.0, num / np.where(den == 0, 1.0, den))
    present = (support + predicted) > 0
    f1 = np.where(present, 2 * tp / np.where(present, support + predicted, 1.0), 0.0)
    if metric == "weighted_f1":
        return (f1 * support).sum(axis=1) / n
    return f1.sum(axis=1) / present.sum(axis=1)  # macro_f1
