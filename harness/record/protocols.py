"""The evaluation protocols: which epoch of a run gives its headline numbers. Pure functions.

- published: the epoch with the best test score, as the TTL paper did (optimistic: picked on what it is judged on).
- clean: the epoch with the best validation score; test is only read at that epoch.
- tuned: not a pick of its own: each (task, model) at the setting its search (`harness tune`) chose on validation,
  with the clean protocol's figures (harness/aggregate/tuned.py builds its cells; records never hold it).
"""
from __future__ import annotations

from harness import metrics
from harness.record.schema import EpochMetrics, Fit, ProtocolResult

# The protocol every command shows unless told otherwise (table, compare, plot, the sweep's table):
# a verdict must not rest on an epoch picked on the test split it is judged on.
DEFAULT_PROTOCOL = "clean"
TUNED = "tuned"
PROTOCOLS = ("published", "clean", TUNED)  # what table, compare, plot, report and export accept


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
