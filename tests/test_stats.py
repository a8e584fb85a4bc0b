import math

import numpy as np
import pytest

from harness import metrics, scores, stats


def test_mean_ci_matches_hand_computation():
    mean, half, n = stats.mean_ci([1.0, 2.0, 3.0])
    # sd = 1, t(0.975, 2) = 4.302652729911275, half = t * sd / sqrt(3)
    assert (mean, n) == (2.0, 3)
    assert half == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)
    assert stats.mean_ci([90.0]) == (90.0, None, 1)


def test_welch_p_matches_hand_computation():
    # diff = -3, var/n = 1/3 each -> t = -3.6742, dof = 4 -> two-sided p = 0.02131
    assert stats.welch_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.021311, abs=1e-5)
    assert stats.welch_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert stats.welch_p([1], [2, 3]) is None


def test_mcnemar_exact():
    gold = np.zeros(20, dtype=int)
    a = np.zeros(20, dtype=int)
    b = np.zeros(20, dtype=int)
    a[:9] = 1  # A wrong on 0..8
    b[9] = 1  # B wrong on 9 only -> only A right: 1 example (9); only B right: 9 examples (0..8)
    p, only_a, only_b = stats.mcnemar_p(a, b, gold)
    assert (only_a, only_b) == (1, 9)
    assert p == pytest.approx(22 / 1024)  # 2 * P(X <= 1), X ~ Bin(10, 1/2)
    assert stats.mcnemar_p(a, a, gold)[0] == 1.0


def test_paired_bootstrap_separates_real_from_null_differences():
    rng = np.random.default_rng(0)
    a = rng.random((3, 400)) < 0.9
    b = rng.random((3, 400)) < 0.7
    assert stats.paired_bootstrap_p(a, b, rounds=2000) < 0.01
    assert stats.paired_bootstrap_p(a, a.copy(), rounds=2000) == 1.0


def test_accuracy_and_macro_f1_by_hand():
    pred, gold = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    assert metrics.accuracy(pred, gold) == 0.75
    # class 0: tp 1, fp 1, fn 0 -> 2/3; class 1: tp 2, fp 0, fn 1 -> 4/5
    assert metrics.macro_f1(pred, gold) == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert metrics.macro_f1(np.array([0, 0]), np.array([0, 0])) == 1.0  # absent classes left out


def test_prediction_strings_round_trip():
    ids = [0, 3, 1, 2, 0]
    assert scores.encode_ids(ids) == "03120"
    assert scores.decode_ids("03120").tolist() == ids


def _fit(train_set, tests, vals=None, metric="accuracy"):
    from harness.record import EpochMetrics, Fit, SplitMetrics

    def split(v):
        return SplitMetrics({metric: v, "other": 1 - v}, 0.5)

    epochs = [EpochMetrics(epoch=i + 1, train_loss=0.5, test=split(t),
                           validation=None if vals is None else split(vals[i]))
              for i, t in enumerate(tests)]
    return Fit(train_set=train_set, validation_source=None if vals is None else "split", train_examples=10,
               validation_examples=0, epochs=epochs, train_s=0.0, eval_s=0.0, train_tokens_real=0,
               train_tokens_processed=0, eval_tokens_real=0, eval_tokens_processed=0, steps=1)


def test_protocols_pick_epochs_on_test_and_on_validation():
    out = scores.protocols([_fit("train", [0.80, 0.86, 0.84], vals=[0.70, 0.75, 0.78])])
    assert out["published"].epoch == 2 and out["published"].test["accuracy"] == 0.86
    assert out["clean"].epoch == 3 and out["clean"].test["accuracy"] == 0.84
    assert out["clean"].picked_by == "validation accuracy" and out["clean"].main_score == 0.84


def test_protocols_pick_by_the_main_metric_in_its_direction():
    fit = _fit("train", [0.60, 0.40, 0.50], vals=[0.30, 0.20, 0.25], metric="mse")  # lower is better
    out = scores.protocols([fit], main="mse")
    assert (out["published"].epoch, out["published"].main) == (2, "mse")
    assert out["clean"].epoch == 2 and out["clean"].picked_by == "validation mse"
    assert out["clean"].test == {"mse": 0.40, "other": pytest.approx(0.60)}  # every test metric at that epoch
    fit = _fit("train", [0.60, 0.40, 0.50], vals=[0.30, 0.20, 0.25], metric="pearson")
    assert scores.protocols([fit], main="pearson")["clean"].epoch == 1


def test_protocols_with_a_carved_fit():
    out = scores.protocols([_fit("train", [0.9, 0.91]), _fit("train-minus-carved", [0.88, 0.87], vals=[0.8, 0.8])])
    assert (out["published"].fit, out["published"].epoch) == (0, 2)
    assert (out["clean"].fit, out["clean"].epoch, out["clean"].test["accuracy"]) == (1, 1, 0.88)  # tie: earliest
