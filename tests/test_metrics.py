"""Metrics against independent formulas and libraries; trivial baselines by simulation."""

import numpy as np
import pytest

from harness import metrics


def old_macro_f1(pred, gold, num_classes):
    """The harness's macro-F1 before issue 13 (scores.macro_f1 of b402baf), kept as the reference."""
    f1s = []
    for c in range(num_classes):
        tp = np.sum((pred == c) & (gold == c))
        fp = np.sum((pred == c) & (gold != c))
        fn = np.sum((pred != c) & (gold == c))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else float("nan")


def confusion(pred, gold, k):
    m = np.zeros((k, k))
    for p, g in zip(pred, gold, strict=True):
        m[g, p] += 1
    return m


def mcc_by_hand(pred, gold, k):
    """Gorodkin's multi-class MCC from the confusion matrix (the binary phi coefficient for k = 2)."""
    c = confusion(pred, gold, k)
    n, correct = c.sum(), np.trace(c)
    t, p = c.sum(axis=1), c.sum(axis=0)
    den = np.sqrt((n ** 2 - p @ p) * (n ** 2 - t @ t))
    return 0.0 if den == 0 else (correct * n - t @ p) / den


def ranks(x):
    """Average ranks with ties, without scipy."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        r[x == v] = r[x == v].mean()
    return r


CASES = [(np.random.default_rng(s), k, n) for s, (k, n) in enumerate([(2, 50), (3, 200), (4, 37), (3, 9)])]


@pytest.mark.parametrize("rng, k, n", CASES)
def test_classification_metrics_match_independent_formulas(rng, k, n):
    gold = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, k, n))
    pred[0] = (gold[0] + 1) % k  # at least one error
    c = confusion(pred, gold, k)
    tp, support = np.diag(c), c.sum(axis=1)
    f1 = np.array([2 * tp[i] / (2 * tp[i] + c[:, i].sum() - tp[i] + support[i] - tp[i])
                   if support[i] + c[:, i].sum() else np.nan for i in range(k)])
    assert metrics.accuracy(pred, gold) == pytest.approx(np.mean(pred == gold))
    assert metrics.macro_f1(pred, gold) == pytest.approx(old_macro_f1(pred, gold, k))
    assert metrics.macro_f1(pred, gold) == pytest.approx(np.nanmean(f1))
    assert metrics.weighted_f1(pred, gold) == pytest.approx(np.nansum(f1 * support) / support.sum())
    assert metrics.mcc(pred, gold) == pytest.approx(mcc_by_hand(pred, gold, k))


def test_macro_f1_keeps_the_old_harness_semantics_at_the_edges():
    gold, pred = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])  # class 2 only predicted: counts with F1 0
    expected = (2 / 3 + 1 + 0) / 3  # class 0: tp 1, fn 1; class 1: perfect; class 2: fp 1
    assert metrics.macro_f1(pred, gold) == pytest.approx(old_macro_f1(pred, gold, 3)) == pytest.approx(expected)
    same = np.array([0, 0])
    assert metrics.macro_f1(same, same) == old_macro_f1(same, same, 3) == 1.0  # absent classes left out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_metrics_match_numpy(seed):
    rng = np.random.default_rng(seed)
    gold = np.round(rng.uniform(1, 5, 300) * 4) / 4  # ties, like ASSIN's quarter steps
    pred = gold + rng.normal(0, 0.8, 300)
    assert metrics.pearson(pred, gold) == pytest.approx(np.corrcoef(pred, gold)[0, 1])
    assert metrics.spearman(pred, gold) == pytest.approx(np.corrcoef(ranks(pred), ranks(gold))[0, 1])
    assert metrics.mse(pred, gold) == pytest.approx(np.mean((pred - gold) ** 2))


def test_a_constant_prediction_correlates_zero_not_nan():
    gold = np.array([1.0, 2.0, 3.0, 4.0])
    assert metrics.pearson(np.full(4, 2.5), gold) == 0.0
    assert metrics.spearman(np.full(4, 2.5), gold) == 0.0
    assert np.isnan(metrics.pearson(np.array([1.0]), np.array([2.0])))


def test_lower_is_better_ranks_the_other_way():
    assert metrics.rank_key("mse", 0.2) > metrics.rank_key("mse", 0.5)
    assert metrics.rank_key("pearson", 0.5) > metrics.rank_key("pearson", 0.2)
    assert metrics.normalized(0.25, baseline=1.0, best=0.0) == 0.75  # MSE a quarter of the baseline's
    assert metrics.normalized(0.6, baseline=0.2, best=1.0) == pytest.approx(0.5)


@pytest.mark.parametrize("p", [[0.5, 0.5], [0.78, 0.17, 0.05], [0.25] * 4, [0.9, 0.1]])
def test_derived_classification_baselines_by_simulation(p):
    """The rule: the better of always-the-majority and uniform guessing; checked by simulating both."""
    rng = np.random.default_rng(0)
    k, n = len(p), 20000
    gold = rng.choice(k, size=n, p=p)
    majority = np.full(n, np.bincount(gold).argmax())
    for name in ("accuracy", "macro_f1", "weighted_f1", "mcc"):
        fn = metrics.METRICS[name].fn
        uniform = np.mean([fn(rng.integers(0, k, n), gold) for _ in range(5)])
        expected = max(fn(majority, gold), uniform)
        assert metrics.trivial_baseline(name, gold, k) == pytest.approx(expected, abs=0.01), name
    if p == [0.5, 0.5]:
        assert metrics.trivial_baseline("macro_f1", gold, 2) == pytest.approx(0.5, abs=0.01)  # 1/k, balanced


def test_derived_regression_baselines():
    rng = np.random.default_rng(1)
    gold = rng.uniform(1, 5, 5000)
    assert metrics.trivial_baseline("pearson", gold) == 0.0 == metrics.trivial_baseline("spearman", gold)
    assert metrics.trivial_baseline("mse", gold) == pytest.approx(metrics.mse(np.full(5000, gold.mean()), gold))
    # no other constant does better
    assert metrics.trivial_baseline("mse", gold) < metrics.mse(np.full(5000, gold.mean() + 0.1), gold)


@pytest.mark.parametrize("name", list(metrics.METRICS))
def test_batched_metrics_equal_the_per_split_ones(name):
    """The bootstrap's fast path gives, row by row, what the library call gives (edge rows included)."""
    rng = np.random.default_rng(3)
    if metrics.METRICS[name].task_type == "classification":
        gold = rng.integers(0, 3, (40, 25))
        pred = np.where(rng.random((40, 25)) < 0.5, gold, rng.integers(0, 3, (40, 25)))
        gold[0], pred[0] = 0, 0  # one class only
        pred[1] = 1  # a constant prediction
        gold[2] = np.where(gold[2] == 2, 0, gold[2])  # a class only predicted
    else:
        gold = np.round(rng.uniform(1, 5, (40, 25)) * 4) / 4
        pred = gold + rng.normal(0, 1, (40, 25))
        pred[1] = 3.0  # a constant prediction
    expected = [metrics.METRICS[name].fn(p, g) for p, g in zip(pred, gold, strict=True)]
    assert metrics.batched(name, pred, gold) == pytest.approx(expected, abs=1e-12)


def test_accuracy_and_macro_f1_by_hand():
    pred, gold = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    assert metrics.accuracy(pred, gold) == 0.75
    # class 0: tp 1, fp 1, fn 0 -> 2/3; class 1: tp 2, fp 0, fn 1 -> 4/5
    assert metrics.macro_f1(pred, gold) == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert metrics.macro_f1(np.array([0, 0]), np.array([0, 0])) == 1.0  # absent classes left out
