"""Statistics for honest comparisons. Pure functions, checked by simulation and against scipy.

- mean_ci: mean over seeds and the 95% confidence half-width of that mean (Student's t, n - 1 dof).
- prediction_half: the 95% prediction half-width for ONE new run, t * s * sqrt(1 + 1/n): what a single
  published run should fall inside if it came from the same distribution as our seeds.
- welch: Welch's t-test between two models' seed scores (unequal variances, unequal n).
- mcnemar_p: exact McNemar test on the paired predictions of two checkpoints (same test examples).
- seed_aware_test: does A's fine-tuning beat B's? The difference of the mean scores over seeds,
  with both sources of variance: run to run (which seed) and test example to test example (which
  test set). Generic over the metric: exact variance components for a metric that is a mean of
  per-example scores (accuracy), a paired bootstrap over test examples for any other (macro-F1, ...).
- t_test: the one t-test under all of these: a difference whose variance is a sum of independent
  components, each with its degrees of freedom, combined by Welch-Satterthwaite.

Vectorised functions take arrays with any leading batch axes, so a simulation runs thousands of
comparisons in one call through the same code the CLI uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

ALPHA = 0.05


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


def prediction_half(values, confidence: float = 0.95):
    """Half-width of the prediction interval for one new draw: t(n-1) * s * sqrt(1 + 1/n), over the last
    axis. None (scalar input) or NaN (arrays) when n < 2: one run says nothing about the spread."""
    x = np.asarray(values, dtype=float)
    n = x.shape[-1]
    if n < 2:
        return None if x.ndim == 1 else np.full(x.shape[:-1], np.nan)
    from scipy.stats import t

    half = t.ppf(0.5 + confidence / 2, n - 1) * x.std(axis=-1, ddof=1) * math.sqrt(1 + 1 / n)
    return float(half) if x.ndim == 1 else half


@dataclass(frozen=True)
class Welch:
    difference: float  # mean(a) - mean(b)
    t: float
    dof: float
    p: float  # two-sided
    p_greater: float  # one-sided, for mean(a) > mean(b)


def welch(a, b) -> Welch | None:
    """Welch's t-test; None when either side has fewer than 2 values (no variance to test with)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(a.mean() - b.mean())
    if va + vb == 0:  # no spread on either side: identical means are a tie, different ones are certain
        same = diff == 0
        return Welch(diff, 0.0 if same else math.copysign(math.inf, diff), math.nan, 1.0 if same else 0.0,
                     0.5 if same else float(diff < 0))
    t_stat = diff / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    from scipy.stats import t

    return Welch(diff, float(t_stat), float(dof), float(2 * t.sf(abs(t_stat), dof)), float(t.sf(t_stat, dof)))


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


# ------------------------------------------------------------------ seed-aware comparison

@dataclass(frozen=True)
class Scorer:
    """How the seed-aware test scores one run's predictions against gold (the metric's definition is in
    harness/metrics.py; scorer() builds this view of it). per_example, where given, returns per-example
    scores whose mean is the score (accuracy: 1 right, 0 wrong): the example variance is then exact.
    batched, where given, scores each row of (resamples, n) arrays at once (metrics.batched): the same
    numbers as `score`, so the bootstrap takes seconds less, not another path."""
    name: str
    score: Callable[[np.ndarray, np.ndarray], float]
    per_example: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    batched: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


ACCURACY = Scorer("accuracy", lambda pred, gold: float(np.mean(pred == gold)),
                  lambda pred, gold: (pred == gold).astype(float))


def scorer(name: str) -> Scorer:
    """The seed-aware test's view of a metric of harness/metrics.py: accuracy splits into per-example scores (the
    exact path); the others are scored whole on bootstrap resamples, all resamples of a run at once."""
    import functools

    from harness import metrics

    if name == "accuracy":
        return ACCURACY
    return Scorer(name, metrics.METRICS[name].fn, batched=functools.partial(metrics.batched, name))


@dataclass(frozen=True)
class SeedAware:
    metric: str
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    difference: float  # mean_a - mean_b, in the metric's units
    var_seeds: float  # s_a^2 / n_a + s_b^2 / n_b: run-to-run variance of the difference
    var_examples: float  # test-set variance of the difference, net of what var_seeds already holds
    dof: float
    half: float  # 95% half-width of the difference
    p: float  # two-sided
    var_a: float = math.nan  # s_a^2 / n_a: A's share of var_seeds (n_a - 1 dof)
    var_b: float = math.nan  # s_b^2 / n_b (n_b - 1 dof)
    examples: int = 0  # test examples (the example variance has examples - 1 dof)

    @property
    def components(self) -> list[tuple[float, float]]:
        """The variance of the difference as (variance, dof) parts, for t_test: to combine tests of several
        tasks into one (an average over tasks)."""
        return [(self.var_a, self.n_a - 1), (self.var_b, self.n_b - 1), (self.var_examples, self.examples - 1)]


def t_test(diff, components):
    """(dof, half, p) of diff / sqrt(sum of variances), two-sided, for a difference whose variance is the sum of
    independent components [(variance, dof), ...], the dof by Welch-Satterthwaite. Vectorised over leading axes.
    No variance at all: p is 1 for a zero difference and 0 for any other, half 0 (callers that cannot call
    such a difference tested say so themselves)."""
    from scipy.stats import t

    diff = np.asarray(diff, dtype=float)
    parts = [(np.asarray(v, dtype=float), d) for v, d in components]
    total = sum(v for v, _ in parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = total ** 2 / sum(v ** 2 / d for v, d in parts)
        stat = diff / np.sqrt(total)
        p = np.where(total > 0, 2 * t.sf(np.abs(stat), dof), np.where(diff == 0, 1.0, 0.0))
        half = np.where(total > 0, t.ppf(1 - ALPHA / 2, dof) * np.sqrt(total), 0.0)
    return dof, half, p


def _t_test(diff, var_a, n_a, var_b, n_b, var_ex, dof_ex):
    """The seed-aware test's t-test: the two models' seed variances (var / n, n - 1 dof each) and the test
    examples' variance."""
    return t_test(diff, [(np.asarray(var_a) / n_a, n_a - 1), (np.asarray(var_b) / n_b, n_b - 1), (var_ex, dof_ex)])


def _interaction_ms(x):
    """Two-way ANOVA residual mean square of x (..., runs, examples): the run x example interaction,
    i.e. how much a run's per-example scores wander beyond its overall level and the example's difficulty."""
    resid = x - x.mean(axis=-1, keepdims=True) - x.mean(axis=-2, keepdims=True) + x.mean(axis=(-2, -1), keepdims=True)
    n, m = x.shape[-2], x.shape[-1]
    return (resid ** 2).sum(axis=(-2, -1)) / ((n - 1) * (m - 1))


def additive_seed_aware(x_a, x_b) -> dict:
    """The seed-aware test for a metric that is the mean of per-example scores. Vectorised.

    x_a (..., n_a, N), x_b (..., n_b, N): per-run, per-example scores on the same N test examples
    (n >= 2 each). Variance of the difference of the seed means, in a crossed random-effects model
    (runs x examples): the run-to-run part from the per-run scores (Welch's terms), plus the
    test-example part from the per-example differences d_i of the seed means, minus the
    interaction (ANOVA residual) that both of those already hold, so it is not counted twice."""
    x_a, x_b = np.asarray(x_a, dtype=float), np.asarray(x_b, dtype=float)
    n_a, n_b, examples = x_a.shape[-2], x_b.shape[-2], x_a.shape[-1]
    runs_a, runs_b = x_a.mean(axis=-1), x_b.mean(axis=-1)
    d = x_a.mean(axis=-2) - x_b.mean(axis=-2)
    var_ex = d.var(axis=-1, ddof=1) / examples
    var_ex = np.maximum(0.0, var_ex - _interaction_ms(x_a) / (n_a * examples) - _interaction_ms(x_b) / (n_b * examples))
    diff = runs_a.mean(axis=-1) - runs_b.mean(axis=-1)
    var_a, var_b = runs_a.var(axis=-1, ddof=1), runs_b.var(axis=-1, ddof=1)
    dof, half, p = _t_test(diff, var_a, n_a, var_b, n_b, var_ex, examples - 1)
    return {"mean_a": runs_a.mean(axis=-1), "mean_b": runs_b.mean(axis=-1), "difference": diff,
            "var_seeds": var_a / n_a + var_b / n_b, "var_examples": var_ex, "dof": dof, "half": half, "p": p,
            "var_a": var_a / n_a, "var_b": var_b / n_b}


BOOTSTRAP_BLOCK = 100  # resamples scored at once by a batched metric: bounds the (block, n) index arrays


def bootstrap_example_variance(pred_a, pred_b, gold, metric: Scorer, rounds: int = 1000, seed: int = 0) -> float:
    """The test-example variance of the difference of seed means for any metric: resample test examples
    (the same indices for every run of both models), net of the run x example interaction, estimated
    per model from the spread of each run's score around the seed mean across resamples."""
    if rounds < 2:  # no spread to estimate
        return float("nan")
    rng = np.random.default_rng(seed)
    examples = len(gold)

    def scores(preds, idx):  # (resamples in idx, runs)
        if metric.batched is not None:
            return np.stack([metric.batched(p[idx], gold[idx]) for p in preds], axis=1)
        return np.array([[metric.score(p[i], gold[i]) for p in preds] for i in idx])

    ma, mb = [], []
    for start in range(0, rounds, BOOTSTRAP_BLOCK):
        # One draw per resample, in order: the same resamples whichever way the metric is scored.
        idx = np.stack([rng.integers(0, examples, size=examples) for _ in range(min(BOOTSTRAP_BLOCK, rounds - start))])
        ma.append(scores(pred_a, idx))
        mb.append(scores(pred_b, idx))
    ma, mb = np.concatenate(ma), np.concatenate(mb)
    total = np.var(ma.mean(axis=1) - mb.mean(axis=1), ddof=1)
    inter = sum(np.var(m - m.mean(axis=1, keepdims=True), axis=0, ddof=1).mean() / (m.shape[1] - 1) for m in (ma, mb))
    return float(max(0.0, total - inter))


def seed_aware_test(pred_a, pred_b, gold, metric: Scorer = ACCURACY, rounds: int = 1000,
                    seed: int = 0) -> SeedAware | None:
    """Does A's fine-tuning beat B's on this task? pred_a (runs_a, N), pred_b (runs_b, N): each run's test
    predictions (any seeds, not paired); gold (N,). None with fewer than 2 runs on a side: one run
    cannot show how much another seed would change, so only the checkpoint-level test is possible."""
    pred_a, pred_b, gold = np.asarray(pred_a), np.asarray(pred_b), np.asarray(gold)
    if len(pred_a) < 2 or len(pred_b) < 2:
        return None
    if metric.per_example is not None:
        x_a = np.stack([metric.per_example(p, gold) for p in pred_a])
        x_b = np.stack([metric.per_example(p, gold) for p in pred_b])
        r = {k: float(v) for k, v in additive_seed_aware(x_a, x_b).items()}
    else:
        sa = np.array([metric.score(p, gold) for p in pred_a])
        sb = np.array([metric.score(p, gold) for p in pred_b])
        var_ex = bootstrap_example_variance(pred_a, pred_b, gold, metric, rounds, seed)
        diff, var_a, var_b = sa.mean() - sb.mean(), sa.var(ddof=1), sb.var(ddof=1)
        dof, half, p = _t_test(diff, var_a, len(sa), var_b, len(sb), var_ex, len(gold) - 1)
        r = {"mean_a": sa.mean(), "mean_b": sb.mean(), "difference": diff, "var_seeds": var_a / len(sa) +
             var_b / len(sb), "var_examples": var_ex, "dof": float(dof), "half": float(half), "p": float(p),
             "var_a": var_a / len(sa), "var_b": var_b / len(sb)}
    return SeedAware(metric=metric.name, n_a=len(pred_a), n_b=len(pred_b), examples=len(gold),
                     **{k: float(v) for k, v in r.items()})
