"""What the head learns and how its outputs become predictions, per task type.

Classification: one logit per class, summed cross-entropy, the argmax as the prediction.
Regression: transformers' `problem_type="regression"` convention: one output (num_labels=1), float labels,
squared error, the output itself as the prediction (rounded as the record stores it, predictions.round_values,
so the metrics in the record are those of the stored predictions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness import metrics
from harness.record import predictions


@dataclass(frozen=True)
class Objective:
    task_type: str  # "classification" or "regression"
    metrics: tuple[str, ...]  # computed after every epoch on validation and test

    @property
    def regression(self) -> bool:
        return self.task_type == "regression"

    def summed_loss(self, logits, labels):
        """The loss summed over the batch (the caller divides by the full batch size)."""
        import torch.nn.functional as F

        if self.regression:
            return F.mse_loss(logits.squeeze(-1), labels, reduction="sum")
        return F.cross_entropy(logits, labels, reduction="sum")

    def predict(self, logits) -> np.ndarray:
        if self.regression:
            return logits.squeeze(-1).double().cpu().numpy()
        return logits.argmax(-1).cpu().numpy()

    def empty_predictions(self, n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float64 if self.regression else np.int64)

    def score(self, preds: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """(predictions as stored, {metric: value} computed on them)."""
        if self.regression:
            preds = predictions.round_values(preds)
        return preds, metrics.compute(self.metrics, preds, gold)

    def encode(self, preds: np.ndarray) -> str:
        return predictions.encode_predictions(preds, self.task_type)


def objective_of(task) -> Objective:
    return Objective(task_type=task.type, metrics=task.metrics)
