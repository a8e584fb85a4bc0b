"""The one routine for a cell: it learns, a seed fixes the numbers, carved validation, task types, failures."""
import json

import numpy as np
import pytest

from harness import metrics
from harness.config import RunConfig
from harness.errors import RunFailed, UserError
from harness.finetune import cell
from harness.record import predictions
from harness.registry.load import load_tasks, local_model


def test_the_routine_learns_a_separable_task(toy_env, tiny_decoder):
    task = load_tasks()["toy"]
    rec = cell.run_cell(task, local_model(tiny_decoder), RunConfig(epochs=8, learning_rate=3e-3), seed=1,
                           mirror=str(toy_env["mirror"]), log=lambda m: None)
    assert rec.fits[0].epochs[0].test.metrics["accuracy"] < 0.6  # starts at chance ...
    assert rec.protocols["published"].test["accuracy"] >= 0.85  # ... and learns
    assert rec.protocols["clean"].picked_by == "validation accuracy"
    assert len(rec.fits) == 1 and len(rec.fits[0].epochs) == 8
    assert rec.tokens.padding_efficiency > 0.5


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_same_seed_same_numbers_other_seed_other_numbers(toy_env, tiny_decoder, precision):
    task = load_tasks()["toy"]
    spec = local_model(tiny_decoder)
    cfg = RunConfig(epochs=1, learning_rate=1e-3, precision=precision)
    run = lambda seed: cell.run_cell(task, spec, cfg, seed=seed,  # noqa
                                        mirror=str(toy_env["mirror"]), log=lambda m: None)
    a, b, c = run(5), run(5), run(6)
    assert a.fits[0].epochs[0].test.loss == b.fits[0].epochs[0].test.loss
    assert a.fits[0].epochs[0].train_loss == b.fits[0].epochs[0].train_loss
    assert a.fits[0].epochs[0].train_loss != c.fits[0].epochs[0].train_loss


def test_carved_validation_gives_two_fits(toy_env, tiny_encoder):
    task = load_tasks()["toybool"]
    rec = cell.run_cell(task, local_model(tiny_encoder), RunConfig(epochs=1), seed=1,
                           mirror=str(toy_env["mirror"]), log=lambda m: None)
    assert [f.train_set for f in rec.fits] == ["train", "train-minus-carved"]
    assert rec.fits[0].train_examples == 120 and rec.fits[1].train_examples == 100
    assert rec.fits[1].validation_examples == 20 and rec.dataset_sizes["carved_validation"] == 20
    assert rec.protocols["published"].fit == 0 and rec.protocols["clean"].fit == 1
    only = cell.run_cell(task, local_model(tiny_encoder), RunConfig(epochs=1, protocols="published"), seed=1,
                            mirror=str(toy_env["mirror"]), log=lambda m: None)
    assert len(only.fits) == 1 and only.protocols["clean"] is None


def test_divergence_fails_the_run(toy_env, tiny_encoder):
    task = load_tasks()["toy"]
    with pytest.raises(RunFailed, match="diverged"):
        cell.run_cell(task, local_model(tiny_encoder), RunConfig(epochs=1, learning_rate=1e30, max_grad_norm=0),
                         seed=1, mirror=str(toy_env["mirror"]), log=lambda m: None)


def test_decoder_without_pad_token_is_refused(toy_env, tmp_path):
    from tiny_models import make_decoder

    folder = make_decoder(tmp_path / "nopad", pad=False)
    with pytest.raises(UserError, match="no pad token"):
        cell.run_cell(load_tasks()["toy"], local_model(folder), RunConfig(epochs=1), seed=1,
                         mirror=str(toy_env["mirror"]), log=lambda m: None)


@pytest.mark.slow  # three processes: one run alone, one on two gloo ranks
def test_data_parallel_on_two_cpu_processes_matches_one_process(toy_env, tiny_decoder, tmp_path):
    """torchrun with 2 gloo processes trains the same cell, same schema, same numbers (Llama has no dropout)."""
    import os
    import subprocess
    import sys

    common = ["--task", "toy", "--model", str(tiny_decoder), "--mirror", str(toy_env["mirror"]), "--epochs", "2",
              "--learning-rate", "1e-3", "--limit", "40", "--threads", "1", "--device", "cpu",
              "--precision", "fp32"]  # the same numbers to 1e-3: in bf16 the two reductions round apart
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "harness", "run", *common, "--results", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "harness", "run", *common, "--results", str(tmp_path / "two"),
                          "--processes", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    (a,) = (tmp_path / "one").rglob("seed42.json")
    (b,) = (tmp_path / "two").rglob("seed42.json")
    a, b = json.loads(a.read_text()), json.loads(b.read_text())
    assert b["device"].startswith("2 x cpu") and a["variant"] == b["variant"]
    assert b["tokens"]["train_real"] == a["tokens"]["train_real"]
    for ea, eb in zip(a["fits"][0]["epochs"], b["fits"][0]["epochs"], strict=True):
        assert ea["test_predictions"] == eb["test_predictions"]
        assert eb["test"]["loss"] == pytest.approx(ea["test"]["loss"], rel=1e-3)
        assert eb["train_loss"] == pytest.approx(ea["train_loss"], rel=1e-3)


QUIET = dict(log=lambda m: None)


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_regression_through_the_one_routine(toy_env, tiny_decoder, tiny_encoder, family):
    task = load_tasks()["toyreg"]
    spec = local_model(tiny_decoder if family == "decoder" else tiny_encoder)
    rec = cell.run_cell(task, spec, RunConfig(epochs=8, learning_rate=5e-3, batch_size=8), seed=1,
                           mirror=str(toy_env["mirror"]), **QUIET)
    fit = rec.fits[0]
    assert rec.task.type == "regression" and rec.model.family == family
    assert [set(e.test.metrics) for e in fit.epochs] == [{"pearson", "spearman", "mse"}] * 8
    # learns: the score follows the word, and the error ends below that of always predicting the mean
    gold = predictions.decode_predictions(rec.test_labels, "regression")
    assert rec.protocols["published"].test["pearson"] > 0.8
    assert fit.epochs[-1].test.metrics["mse"] < metrics.trivial_baseline("mse", gold)
    # both protocols pick by the main metric (Pearson): test for published, validation for clean
    assert rec.protocols["published"].epoch == 1 + int(np.argmax([e.test.metrics["pearson"] for e in fit.epochs]))
    assert rec.protocols["clean"].epoch == 1 + int(np.argmax([e.validation.metrics["pearson"] for e in fit.epochs]))
    assert rec.protocols["clean"].picked_by == "validation pearson"
    # per-example predictions in the record, from which every metric recomputes exactly
    assert len(gold) == 40 and gold.min() >= -2 and gold.max() <= 2
    for e in fit.epochs:
        preds = predictions.decode_predictions(e.test_predictions, "regression")
        assert len(preds) == 40 and metrics.compute(task.metrics, preds, gold) == e.test.metrics


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_three_classes_through_the_one_routine(toy_env, tiny_decoder, tiny_encoder, family):
    """A 3-class task scored by macro-F1 (imbalanced 3:2:1, as ASSIN's entailment): both families learn it,
    both protocols pick the epoch by macro-F1, and the stored predictions give back every metric."""
    task = load_tasks()["toy3"]
    spec = local_model(tiny_decoder if family == "decoder" else tiny_encoder)
    rec = cell.run_cell(task, spec, RunConfig(epochs=10, learning_rate=5e-3, batch_size=8), seed=1,
                           mirror=str(toy_env["mirror"]), **QUIET)
    fit = rec.fits[0]
    gold = predictions.decode_predictions(rec.test_labels, "classification")
    assert sorted(set(gold.tolist())) == [0, 1, 2] and rec.model.family == family
    assert [set(e.test.metrics) for e in fit.epochs] == [{"macro_f1", "accuracy", "mcc"}] * 10
    # learns: from the trivial baseline of macro-F1 at the first epochs (always NONE, about 0.23 here) to well
    # above it (a tiny model on 96 examples: 0.60 encoder, 0.79 decoder at seed 1)
    baseline = metrics.trivial_baseline("macro_f1", gold, 3)
    assert fit.epochs[0].test.metrics["macro_f1"] < baseline + 0.05
    assert rec.protocols["published"].test["macro_f1"] > baseline + 0.25
    assert rec.protocols["published"].epoch == 1 + int(np.argmax([e.test.metrics["macro_f1"] for e in fit.epochs]))
    assert rec.protocols["clean"].epoch == 1 + int(np.argmax([e.validation.metrics["macro_f1"]
                                                              for e in fit.epochs]))
    assert rec.protocols["clean"].picked_by == "validation macro_f1"
    for e in fit.epochs:
        preds = predictions.decode_predictions(e.test_predictions, "classification")
        assert metrics.compute(task.metrics, preds, gold) == e.test.metrics


def test_the_data_line_says_when_the_data_is_the_copy_shipped_in_the_package():
    from harness import embedded
    from harness.finetune.cell import _from

    assert "the hub is offline or unreachable" in _from("embedded", None)  # the last resort: said, with why
    assert _from("embedded", str(embedded.ROOT)) == " (the copy shipped in the package)"  # asked for (the demo)
    assert _from("hub", None) == "" and _from("/data/mirror/nilc-nlp/assin", None) == ""
