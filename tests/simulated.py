"""Simulated fine-tuning runs for statistical checks: who is right on which test example, per model and seed.

Each test example has a difficulty; a run is right on it with a logistic probability of that difficulty plus
the run's seed effect (tau: the spread from seed to seed) plus the model's shift. rho < 1 gives each model its
own difficulties, only correlated with the first model's (another architecture, right on other examples), with
the same distribution: the same accuracy in expectation. The same model as tests/aggregate/test_stats.py's
calibration of the seed-aware test; benchmarks/marks_calibration.py runs it at scale through the table.
"""
import math

import numpy as np

from harness.aggregate.table import SeedScore, table_of

MU_MEAN, MU_SD, TAU = 3.5, 3.0, 0.21  # about 95% accuracy, a seed SD of about 1.5 points at 2,448 examples


def correctness(rng, models: int, seeds: int | list[int], examples: int, rho: float = 1.0, tau=TAU,
                shifts=None) -> list[np.ndarray]:
    """Per model, a (seeds, examples) array of right (True) / wrong. seeds: one count for all, or one per model;
    tau: one seed spread for all, or one per model; shifts: each model's logit shift (default 0: equal models)."""
    z = rng.normal(size=examples)
    counts = seeds if isinstance(seeds, list) else [seeds] * models
    taus = tau if isinstance(tau, (list, tuple)) else [tau] * models
    out = []
    for m in range(models):
        z_m = z if rho >= 1 or m == 0 else rho * z + math.sqrt(1 - rho ** 2) * rng.normal(size=examples)
        delta = rng.normal(0, taus[m], size=(counts[m], 1))
        logit = MU_MEAN + MU_SD * z_m + delta + (shifts[m] if shifts else 0.0)
        out.append(rng.random((counts[m], examples)) < 1 / (1 + np.exp(-logit)))
    return out


def seed_scores(runs: list[np.ndarray], task: str = "t", predictions: bool = True) -> list[SeedScore]:
    """SeedScores of a column (accuracy in %), as records give them: with each run's test predictions (right:
    class 0, the gold label; wrong: class 1), or without (a DataFrame or records that hold none)."""
    out = []
    for m, right in enumerate(runs):
        gold = "0" * right.shape[1]
        for s, row in enumerate(right):
            acc = float(row.mean())
            preds = "".join("0" if ok else "1" for ok in row) if predictions else ""
            out.append(SeedScore("default", f"m{m}", f"M{m}", task, s, 100 * acc, raw=acc, predictions=preds,
                                 gold=gold if predictions else ""))
    return out


def table(scores: list[SeedScore], tasks=("t",)):
    """The table of simulated scores: one column per task (and the Average where there are several)."""
    models = sorted({s.model for s in scores})
    return table_of(scores, "clean", [(t, t.upper()) for t in tasks], [(m, m.upper()) for m in models])


def has_bold(t, column: str = "t") -> bool:
    return any(mark == "best" for (_, col), mark in t.marks.items() if col == column)
