"""Statistics for honest comparisons. Pure functions, unit-tested against hand-computed values.

- mean_ci: mean over seeds and the 95% confidence half-width from Student's t (n - 1 dof).
- welch_p: two-sided Welch t-test between two models' seed scores (unequal variances).
- mcnemar_p: exact McNemar test on paired predictions (same test examples, two models): only the
  discordant examples carry information, and the exact binomial form is right for small counts.
- paired_bootstrap_p: paired bootstrap over test examples, pooling seeds, for several seeds per model.
"""
from __future__ import annotations

import math

import numpy as np


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float | None, int]:
    """(mean, half-width or None when n < 2, n)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return float("nan"), None, 0
    mean = float(x.mean())
    if n < 2:
        return mean, None, 1
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, half, n


def welch_p(a, b) -> float | None:
    """Two-sided p of Welch's t-test; None when either side has fewer than 2 values."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = a.mean() - b.mean()
    if va + vb == 0:
        return 1.0 if diff == 0 else 0.0
    t_stat = diff / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    from scipy.stats import t

    return float(2 * t.sf(abs(t_stat), dof))


def mcnemar_p(pred_a, pred_b, gold) -> tuple[float, int, int]:
    """Exact two-sided McNemar p, with b = examples only A gets right, c = only B gets right."""
    pred_a, pred_b, gold = np.asarray(pred_a), np.asarray(pred_b), np.asarray(gold)
    right_a, right_b = pred_a == gold, pred_b == gold
    b = int(np.sum(right_a & ~right_b))
    c = int(np.sum(~right_a & right_b))
    n = b + c
    if n == 0:
        return 1.0, b, c
    from scipy.stats import binom

    p = 2 * binom.cdf(min(b, c), n, 0.5)
    return float(min(1.0, p)), b, c


def paired_bootstrap_p(correct_a: np.ndarray, correct_b: np.ndarray, rounds: int = 10000, seed: int = 0) -> float:
    """Two-sided p that mean(correct_a) - mean(correct_b) differs from 0, resampling test examples
    (columns) with the same indices for both. correct_*: (seeds, examples) 0/1 arrays."""
    a, b = np.atleast_2d(correct_a).astype(float), np.atleast_2d(correct_b).astype(float)
    per_example = a.mean(axis=0) - b.mean(axis=0)  # seeds pooled per example
    observed = per_example.mean()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(per_example), size=(rounds, len(per_example)))
    boot = per_example[idx].mean(axis=1)
    # Shift to the null (difference 0) and count resamples at least as extreme as observed.
    p = np.mean(np.abs(boot - observed) >= abs(observed))
    return float(max(p, 1.0 / rounds))
