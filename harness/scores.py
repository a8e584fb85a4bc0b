"""Scores: the per-example text form of predictions and labels, and the two protocols' epoch choice.
Pure functions. The metrics themselves are in harness/metrics.py."""
from __future__ import annotations

import numpy as np

from . import metrics
from .record import EpochMetrics, Fit, ProtocolResult

# The protocol every command shows unless told otherwise (table, compare, plot, the sweep's table):
# a verdict must not rest on an epoch picked on the test split it is judged on.
DEFAULT_PROTOCOL = "clean"

PREDICTION_DIGITS = 5  # significant digits kept of a regression prediction: metrics move by ~1e-5 at most


def encode_ids(ids) -> str:
    """Class ids -> a compact string, one character each ('0'..'9', then 'a'..)."""
    return "".join("0123456789abcdefghijklmnopqrstuvwxyz"[int(i)] for i in ids)


def decode_ids(text: str) -> np.ndarray:
    return np.array([int(ch, 36) for ch in text], dtype=np.int64)


def round_values(values, digits: int = PREDICTION_DIGITS) -> np.ndarray:
    """Regression outputs as they are stored: `digits` significant digits (metrics are computed on these)."""
    return np.array([float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=float)], dtype=np.float64)


def encode_values(values) -> str:
    """Numbers -> space-separated shortest text ('%g' to 6 significant digits; exact for values already rounded
    by round_values or splits.encode_targets, so decode_values gives back the same floats)."""
    return " ".join(f"{v:.6g}" for v in np.asarray(values, dtype=float))


def decode_values(text: str) -> np.ndarray:
    return np.array([float(x) for x in text.split()], dtype=np.float64)


def encode_predictions(values, task_type: str) -> str:
    return encode_values(values) if task_type == "regression" else encode_ids(values)


def decode_predictions(text: str, task_type: str) -> np.ndarray:
    return decode_values(text) if task_type == "regression" else decode_ids(text)


def pick_published(epochs: list[EpochMetrics], main: str = "accuracy") -> int:
    """The paper's choice: the epoch with the best test score on the main metric (earliest on ties).
    Returns its index."""
    return max(range(len(epochs)), key=lambda i: (metrics.rank_key(main, epochs[i].test.metrics[main]), -i))


def pick_clean(epochs: list[EpochMetrics], main: str = "accuracy") -> int | None:
    """The clean choice: the epoch with the best validation score on the main metric (earliest on ties); test
    is only read at that epoch. None where there is no validation."""
    if not epochs or epochs[0].validation is None:
        return None
    return max(range(len(epochs)), key=lambda i: (metrics.rank_key(main, epochs[i].validation.metrics[main]), -i))


def protocols(fits: list[Fit], main: str = "accuracy") -> dict[str, ProtocolResult | None]:
    """Both protocols' headline numbers from a run's fits.
    published: the fit on the whole train split, epoch by the test score on the main metric.
    clean: the fit with a validation split, epoch by the validation score on the main metric."""
    out: dict[str, ProtocolResult | None] = {"published": None, "clean": None}
    for i, fit in enumerate(fits):
        if fit.train_set == "train" and out["published"] is None:
            out["published"] = _result(i, fit.epochs[pick_published(fit.epochs, main)], f"test {main}", main)
        c = pick_clean(fit.epochs, main)
        if c is not None and out["clean"] is None:
            out["clean"] = _result(i, fit.epochs[c], f"validation {main}", main)
    return out


def _result(fit: int, epoch: EpochMetrics, picked_by: str, main: str) -> ProtocolResult:
    return ProtocolResult(fit=fit, epoch=epoch.epoch, picked_by=picked_by, main=main, test=dict(epoch.test.metrics))
