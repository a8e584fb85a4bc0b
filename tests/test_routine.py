import numpy as np
import pytest
import torch
from tiny_models import make_encoder

from harness import batches, models, routine
from harness.config import RunConfig
from harness.errors import RunFailed, UserError
from harness.registry import load_tasks, local_model
from harness.splits import EncodedSplit


def _split(seqs, labels, types=None):
    lengths = [len(s) for s in seqs]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.concatenate([np.asarray(s, dtype=np.int32) for s in seqs])
    t = None if types is None else np.concatenate([np.asarray(x, dtype=np.int8) for x in types])
    return EncodedSplit(ids, offsets, np.asarray(labels), t)


def test_decoder_pools_the_last_real_token(tiny_decoder):
    """Pad-invariance: a text alone and the same text right-padded in a batch give the same logits."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_decoder)
    spec = local_model(tiny_decoder)
    torch.manual_seed(0)
    model = models.load_model(spec, str(tiny_decoder), None, 2, ["A", "B"], tok, RunConfig(), False).eval()
    assert model.config.pad_token_id == 3
    short = tok("<s>curto</s>")["input_ids"]
    long = tok("<s>um texto bem mais longo que o outro</s>")["input_ids"]
    split = _split([short, long], [0, 1])
    alone, _, _, _ = batches.collate(split, np.array([0]), tok.pad_token_id, torch.device("cpu"))
    batch, _, real, processed = batches.collate(split, np.array([0, 1]), tok.pad_token_id, torch.device("cpu"))
    assert batch["input_ids"][0, len(short):].eq(3).all() and real < processed  # really padded
    with torch.no_grad():
        a = model(**alone).logits[0]
        b = model(**batch).logits[0]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # and the pooled position matters: the logits of the long text differ
    assert not torch.allclose(a, model(**batch).logits[1])


def test_collate_pads_right_and_carries_type_ids():
    split = _split([[5, 6, 7], [8]], [1, 0], types=[[0, 0, 1], [0]])
    batch, labels, real, processed = batches.collate(split, np.array([0, 1]), 0, torch.device("cpu"))
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0]]
    assert labels.tolist() == [1, 0] and (real, processed) == (4, 6)


def test_length_grouped_batches_cover_everything_with_less_padding():
    rng_lengths = np.random.default_rng(0).integers(5, 200, size=1000)
    grouped = batches.train_batches(rng_lengths, 16, np.random.default_rng(1), grouped=True)
    plain = batches.train_batches(rng_lengths, 16, np.random.default_rng(1), grouped=False)
    for plan in (grouped, plain):
        assert sorted(np.concatenate(plan).tolist()) == list(range(1000))

    def efficiency(batches):
        return sum(rng_lengths[b].sum() for b in batches) / sum(len(b) * rng_lengths[b].max() for b in batches)

    assert efficiency(grouped) > 0.9 > efficiency(plain)


def test_oom_policy_halves_the_micro_batch_until_it_fits():
    calls, events = [], []

    def step(micro):
        calls.append(micro)
        if micro > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "ok"

    result, micro = batches.step_with_oom_retry(step, 16, events, step_no=7)
    assert (result, micro) == ("ok", 4) and calls == [16, 8, 4]
    assert events == [{"step": 7, "micro_batch": 8}, {"step": 7, "micro_batch": 4}]


def test_oom_policy_gives_up_at_micro_batch_one():
    def step(micro):
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(RunFailed, match="out of memory at micro-batch 1"):
        batches.step_with_oom_retry(step, 4, [], step_no=1)


def test_other_errors_are_not_swallowed_as_oom():
    def step(micro):
        raise ValueError("shape mismatch")

    with pytest.raises(ValueError):
        batches.step_with_oom_retry(step, 16, [], step_no=1)


def test_micro_batches_give_the_same_update(toy_env, tiny_encoder):
    """Gradient accumulation is exact: micro-batch 4 x 4 trains like batch 16."""
    task = load_tasks()["toy"]
    spec = local_model(tiny_encoder)
    kwargs = dict(seed=3, limit=32, mirror=str(toy_env["mirror"]))
    full = routine.run_cell(task, spec, RunConfig(epochs=1), **kwargs, log=lambda m: None)
    micro = routine.run_cell(task, spec, RunConfig(epochs=1, micro_batch_size=4), **kwargs, log=lambda m: None)
    a, b = full.fits[0].epochs[0], micro.fits[0].epochs[0]
    assert a.test_predictions == b.test_predictions
    assert a.test.loss == pytest.approx(b.test.loss, rel=1e-4)


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_pooled_last_layer_trains_like_the_full_layer(toy_env, tiny_decoder, tmp_path, family):
    """The shortcut is exact: the same run with and without it predicts the same; the record says which ran.
    (Without dropout, which would draw different random numbers for the two.)"""
    task = load_tasks()["toy"]
    spec = local_model(tiny_decoder if family == "decoder" else make_encoder(tmp_path / "bert", dropout=0.0))
    kwargs = dict(seed=3, limit=32, mirror=str(toy_env["mirror"]), log=lambda m: None)
    fast = routine.run_cell(task, spec, RunConfig(epochs=3, learning_rate=3e-3), **kwargs)
    full = routine.run_cell(task, spec, RunConfig(epochs=3, learning_rate=3e-3, pooled_last_layer=False), **kwargs)
    assert (fast.model.last_layer, full.model.last_layer) == ("pooled", "full")
    assert [e.test_predictions for e in fast.fits[0].epochs] == [e.test_predictions for e in full.fits[0].epochs]
    for a, b in zip(fast.fits[0].epochs, full.fits[0].epochs, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        assert a.test.loss == pytest.approx(b.test.loss, rel=1e-5)


def test_the_routine_learns_a_separable_task(toy_env, tiny_decoder):
    task = load_tasks()["toy"]
    rec = routine.run_cell(task, local_model(tiny_decoder), RunConfig(epochs=8, learning_rate=3e-3), seed=1,
                           mirror=str(toy_env["mirror"]), log=lambda m: None)
    assert rec.fits[0].epochs[0].test.metrics["accuracy"] < 0.6  # starts at chance ...
    assert rec.protocols["published"].test["accuracy"] >= 0.85  # ... and learns
    assert rec.protocols["clean"].picked_by == "validation accuracy"
    assert len(rec.fits) == 1 and len(rec.fits[0].epochs) == 8
    assert rec.tokens.padding_efficiency > 0.5


def test_same_seed_same_numbers_other_seed_other_numbers(toy_env, tiny_decoder):
    task = load_tasks()["toy"]
    spec = local_model(tiny_decoder)
    run = lambda seed: routine.run_cell(task, spec, RunConfig(epochs=1, learning_rate=1e-3), seed=seed,  # noqa
                                        mirror=str(toy_env["mirror"]), log=lambda m: None)
    a, b, c = run(5), run(5), run(6)
    assert a.fits[0].epochs[0].test.loss == b.fits[0].epochs[0].test.loss
    assert a.fits[0].epochs[0].train_loss == b.fits[0].epochs[0].train_loss
    assert a.fits[0].epochs[0].train_loss != c.fits[0].epochs[0].train_loss


def test_carved_validation_gives_two_fits(toy_env, tiny_encoder):
    task = load_tasks()["toybool"]
    rec = routine.run_cell(task, local_model(tiny_encoder), RunConfig(epochs=1), seed=1,
                           mirror=str(toy_env["mirror"]), log=lambda m: None)
    assert [f.train_set for f in rec.fits] == ["train", "train-minus-carved"]
    assert rec.fits[0].train_examples == 120 and rec.fits[1].train_examples == 100
    assert rec.fits[1].validation_examples == 20 and rec.dataset_sizes["carved_validation"] == 20
    assert rec.protocols["published"].fit == 0 and rec.protocols["clean"].fit == 1
    only = routine.run_cell(task, local_model(tiny_encoder), RunConfig(epochs=1, protocols="published"), seed=1,
                            mirror=str(toy_env["mirror"]), log=lambda m: None)
    assert len(only.fits) == 1 and only.protocols["clean"] is None


def test_divergence_fails_the_run(toy_env, tiny_encoder):
    task = load_tasks()["toy"]
    with pytest.raises(RunFailed, match="diverged"):
        routine.run_cell(task, local_model(tiny_encoder), RunConfig(epochs=1, learning_rate=1e30, max_grad_norm=0),
                         seed=1, mirror=str(toy_env["mirror"]), log=lambda m: None)


def test_decoder_without_pad_token_is_refused(toy_env, tmp_path):
    from tiny_models import make_decoder

    folder = make_decoder(tmp_path / "nopad", pad=False)
    with pytest.raises(UserError, match="no pad token"):
        routine.run_cell(load_tasks()["toy"], local_model(folder), RunConfig(epochs=1), seed=1,
                         mirror=str(toy_env["mirror"]), log=lambda m: None)


def test_data_parallel_on_two_cpu_processes_matches_one_process(toy_env, tiny_decoder, tmp_path):
    """torchrun with 2 gloo processes trains the same cell, same schema, same numbers (Llama has no dropout)."""
    import json
    import os
    import subprocess
    import sys

    common = ["--task", "toy", "--model", str(tiny_decoder), "--mirror", str(toy_env["mirror"]), "--epochs", "2",
              "--learning-rate", "1e-3", "--limit", "40", "--threads", "1", "--device", "cpu"]
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
