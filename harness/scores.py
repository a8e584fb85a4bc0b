"""Scores: metrics from predictions and the two protocols' epoch choice. Pure functions."""
from __future__ import annotations

import numpy as np

from .record import EpochMetrics, Fit, ProtocolResult

# The protocol every command shows unless told otherwise (table, compare, plot, the sweep's table):
# a verdict must not rest on an epoch picked on the test split it is judged on.
DEFAULT_PROTOCOL = "clean"


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(gold))) if len(gold) else float("nan")


def macro_f1(pred: np.ndarray, gold: np.ndarray, num_classes: int) -> float:
    """Unweighted mean over classes of F1. A class absent from both gold and predictions is left out
    (as sklearn does with the labels present); one present in either counts, possibly with F1 = 0."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    f1s = []
    for c in range(num_classes):
        tp = np.sum((pred == c) & (gold == c))
        fp = np.sum((pred == c) & (gold != c))
        fn = np.sum((pred != c) & (gold == c))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else float("nan")


def encode_ids(ids) -> str:
    """Class ids -> a compact string, one character each ('0'..'9', then 'a'..)."""
    return "".join("0123456789abcdefghijklmnopqrstuvwxyz"[int(i)] for i in ids)


def decode_ids(text: str) -> np.ndarray:
    return np.array([int(ch, 36) for ch in text], dtype=np.int64)


def pick_published(epochs: list[EpochMetrics]) -> int:
    """The paper's choice: the epoch with the highest test accuracy (earliest on ties). Returns its index."""
    return max(range(len(epochs)), key=lambda i: (epochs[i].test.accuracy, -i))


def pick_clean(epochs: list[EpochMetrics]) -> int | None:
    """The clean choice: the epoch with the highest validation accuracy (earliest on ties); test is
    only read at that epoch. None where there is no validation."""
    if not epochs or epochs[0].validation is None:
        return None
    return max(range(len(epochs)), key=lambda i: (epochs[i].validation.accuracy, -i))


def protocols(fits: list[Fit]) -> dict[str, ProtocolResult | None]:
    """Both protocols' headline numbers from a run's fits.
    published: the fit on the whole train split, epoch by test accuracy.
    clean: the fit with a validation split, epoch by validation accuracy."""
    out: dict[str, ProtocolResult | None] = {"published": None, "clean": None}
    for i, fit in enumerate(fits):
        if fit.train_set == "train" and out["published"] is None:
            out["published"] = _result(i, fit.epochs[pick_published(fit.epochs)], "test accuracy")
        c = pick_clean(fit.epochs)
        if c is not None and out["clean"] is None:
            out["clean"] = _result(i, fit.epochs[c], "validation accuracy")
    return out


def _result(fit: int, epoch: EpochMetrics, picked_by: str) -> ProtocolResult:
    return ProtocolResult(fit=fit, epoch=epoch.epoch, picked_by=picked_by, test_accuracy=epoch.test.accuracy,
                          test_macro_f1=epoch.test.macro_f1)
