"""Predictions and labels as a record stores them: compact text, one character per class id, or numbers
rounded to the digits that matter. Pure functions."""
from __future__ import annotations

import numpy as np

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
