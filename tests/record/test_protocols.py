"""The protocols' epoch choice: on test (published) and on validation (clean), by the main metric."""
import pytest

from harness.record import protocols


def _fit(train_set, tests, vals=None, metric="accuracy"):
    from harness.record.schema import EpochMetrics, Fit, SplitMetrics

    def split(v):
        return SplitMetrics({metric: v, "other": 1 - v}, 0.5)

    epochs = [EpochMetrics(epoch=i + 1, train_loss=0.5, test=split(t),
                           validation=None if vals is None else split(vals[i]))
              for i, t in enumerate(tests)]
    return Fit(train_set=train_set, validation_source=None if vals is None else "split", train_examples=10,
               validation_examples=0, epochs=epochs, train_s=0.0, eval_s=0.0, train_tokens_real=0,
               train_tokens_processed=0, eval_tokens_real=0, eval_tokens_processed=0, steps=1)


def test_protocols_pick_epochs_on_test_and_on_validation():
    out = protocols.protocols([_fit("train", [0.80, 0.86, 0.84], vals=[0.70, 0.75, 0.78])])
    assert out["published"].epoch == 2 and out["published"].test["accuracy"] == 0.86
    assert out["clean"].epoch == 3 and out["clean"].test["accuracy"] == 0.84
    assert out["clean"].picked_by == "validation accuracy" and out["clean"].main_score == 0.84


def test_protocols_pick_by_the_main_metric_in_its_direction():
    fit = _fit("train", [0.60, 0.40, 0.50], vals=[0.30, 0.20, 0.25], metric="mse")  # lower is better
    out = protocols.protocols([fit], main="mse")
    assert (out["published"].epoch, out["published"].main) == (2, "mse")
    assert out["clean"].epoch == 2 and out["clean"].picked_by == "validation mse"
    assert out["clean"].test == {"mse": 0.40, "other": pytest.approx(0.60)}  # every test metric at that epoch
    fit = _fit("train", [0.60, 0.40, 0.50], vals=[0.30, 0.20, 0.25], metric="pearson")
    assert protocols.protocols([fit], main="pearson")["clean"].epoch == 1


def test_protocols_with_a_carved_fit():
    out = protocols.protocols([_fit("train", [0.9, 0.91]), _fit("train-minus-carved", [0.88, 0.87], vals=[0.8, 0.8])])
    assert (out["published"].fit, out["published"].epoch) == (0, 2)
    assert (out["clean"].fit, out["clean"].epoch, out["clean"].test["accuracy"]) == (1, 1, 0.88)  # tie: earliest
