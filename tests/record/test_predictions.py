"""Predictions as a record stores them: round trips exact enough to recompute every metric."""

import numpy as np

from harness import metrics
from harness.record import predictions


def test_regression_predictions_round_trip_exactly_so_metrics_can_be_recomputed():
    rng = np.random.default_rng(2)
    gold = np.array([float(f"{v:.6g}") for v in np.float32(rng.uniform(1, 5, 500))])
    raw = rng.normal(3, 1, 500)
    stored = predictions.round_values(raw)
    text = predictions.encode_predictions(stored, "regression")
    back = predictions.decode_predictions(text, "regression")
    assert np.array_equal(back, stored)
    assert np.array_equal(predictions.decode_values(predictions.encode_values(gold)), gold)
    assert metrics.pearson(back, gold) == metrics.pearson(stored, gold)  # the very same numbers
    assert abs(metrics.pearson(stored, gold) - metrics.pearson(raw, gold)) < 1e-4  # and close to full precision
    assert len(text) < 8 * 500  # compact: about 7 characters a prediction


def test_prediction_strings_round_trip():
    ids = [0, 3, 1, 2, 0]
    assert predictions.encode_ids(ids) == "03120"
    assert predictions.decode_ids("03120").tolist() == ids
