import numpy as np
import pytest
import torch
from tiny_models import make_encoder

from harness.config import RunConfig
from harness.data.splits import EncodedSplit
from harness.errors import RunFailed, UserError
from harness.finetune import batches, cell, fit
from harness.finetune.objective import Objective
from harness.registry.load import load_tasks, local_model


def _split(seqs, labels, types=None):
    lengths = [len(s) for s in seqs]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.concatenate([np.asarray(s, dtype=np.int32) for s in seqs])
    t = None if types is None else np.concatenate([np.asarray(x, dtype=np.int8) for x in types])
    return EncodedSplit(ids, offsets, np.asarray(labels), t)


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


def test_precision_is_resolved_as_the_record_says():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert fit.resolved_precision(RunConfig(), cpu) == "fp32"
    assert fit.resolved_precision(RunConfig(), cuda) == "bf16"
    assert fit.resolved_precision(RunConfig(precision="fp32"), cuda) == "fp32"
    assert fit.resolved_precision(RunConfig(precision="bf16"), cpu) == "bf16"
    with fit.autocast(RunConfig(precision="bf16"), cpu):
        assert torch.is_autocast_enabled("cpu")


def _one_step(cfg, seed=0):
    """One optimizer step of train_fit on 16 examples of mixed lengths with a tiny BERT without dropout
    (the micro-batches must not draw other random numbers). Returns the model: p.grad holds the step's
    gradient (accumulated over micro-batches, clipped if clipping is on), p the parameters after it."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.3, num_labels=2))
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(5, 50, size=n) for n in rng.integers(3, 20, size=16)]
    train = _split(seqs, rng.integers(0, 2, size=16))
    fit.train_fit(model=model, train=train, validation=None, test=_split(seqs[:2], [0, 1]),
                      objective=Objective("classification", ("accuracy",)),
                      cfg=cfg, seed=seed, pad_id=0, device=torch.device("cpu"), label="t", train_set="train",
                      validation_source=None, checkpoint_dir=None, log=lambda m: None)
    return model


def test_micro_batches_accumulate_the_gradient_of_the_whole_batch():
    """Gradient accumulation is exact: micro-batches of 4 (and of 3: unequal parts) give the gradient of the
    batch of 16. Compares the gradients themselves, unclipped: AdamW's first step is nearly sign(gradient)
    and clipping rescales, so the parameters after a step would not show a micro-batch scaled 4x."""
    settings = dict(epochs=1, batch_size=16, max_grad_norm=0)
    full = _one_step(RunConfig(**settings))
    for micro in (4, 3):
        split = _one_step(RunConfig(**settings, micro_batch_size=micro))
        for (name, p), q in zip(full.named_parameters(), split.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


def test_clipping_at_one_is_applied():
    unclipped = _one_step(RunConfig(epochs=1, max_grad_norm=0))
    clipped = _one_step(RunConfig(epochs=1))  # the default: 1.0, as the seed recipe
    grads = [p.grad for p in unclipped.parameters()]
    norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
    assert norm > 2.0  # else clipping would change nothing and the test could not fail
    for g, c in zip(grads, (p.grad for p in clipped.parameters()), strict=True):
        torch.testing.assert_close(c, g / (norm + 1e-6), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_optimizer_and_schedule_match_the_trainer_of_the_seed_recipe(tmp_path, tiny_decoder, tiny_encoder, family):
    """The seed recipe's hyperparameters against the library that defined them: the optimizer and scheduler
    transformers.Trainer builds with the seed's arguments (benchmarks/seed_recipe.py) put weight decay on
    the same tensors, with the same AdamW settings, and the same learning rate at every step."""
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    model = AutoModelForSequenceClassification.from_pretrained(tiny_decoder if family == "decoder" else tiny_encoder,
                                                               num_labels=2)
    cfg, total = RunConfig(), 3 * 41  # 3 epochs of 41 steps
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=4e-5, per_device_train_batch_size=16,
                             num_train_epochs=3, weight_decay=0.01, adam_epsilon=1e-8, report_to=[], use_cpu=True)
    trainer = Trainer(model=model, args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=total)
    ours = fit.build_optimizer(model, cfg)
    schedule = fit.linear_schedule(ours, total, int(cfg.warmup_ratio * total))
    names = {id(p): n for n, p in model.named_parameters()}

    def decayed(optimizer):
        return {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}

    def settings(optimizer):
        return [(g["weight_decay"], g["lr"], g["betas"], g["eps"], g["amsgrad"], g["maximize"])
                for g in optimizer.param_groups]

    assert decayed(ours) == decayed(trainer.optimizer) and len(decayed(ours)) > 0
    assert {n for n in names.values()} - decayed(ours)  # biases and norms are left out
    assert isinstance(trainer.optimizer, torch.optim.AdamW) and isinstance(ours, torch.optim.AdamW)
    assert settings(ours) == settings(trainer.optimizer)
    assert (cfg.max_grad_norm, args.max_grad_norm) == (1.0, 1.0)
    lrs = []
    for _ in range(total):
        lrs.append((ours.param_groups[0]["lr"], trainer.optimizer.param_groups[0]["lr"]))
        ours.step(), trainer.optimizer.step()  # no gradients: nothing moves, but the schedulers may step
        schedule.step(), trainer.lr_scheduler.step()
    for step in (0, total // 2, total - 1):
        assert lrs[step][0] == pytest.approx(lrs[step][1], rel=1e-12), step
    assert lrs[0][0] == 4e-5 and lrs[-1][0] == pytest.approx(4e-5 / total)


@pytest.mark.parametrize("family", ["decoder", "encoder"])
def test_pooled_last_layer_trains_like_the_full_layer(toy_env, tiny_decoder, tmp_path, family):
    """The shortcut is exact: the same run with and without it predicts the same; the record says which ran.
    (Without dropout, which would draw different random numbers for the two.)"""
    task = load_tasks()["toy"]
    spec = local_model(tiny_decoder if family == "decoder" else make_encoder(tmp_path / "bert", dropout=0.0))
    kwargs = dict(seed=3, limit=32, mirror=str(toy_env["mirror"]), log=lambda m: None)
    fast = cell.run_cell(task, spec, RunConfig(epochs=3, learning_rate=3e-3), **kwargs)
    full = cell.run_cell(task, spec, RunConfig(epochs=3, learning_rate=3e-3, pooled_last_layer=False), **kwargs)
    assert (fast.model.last_layer, full.model.last_layer) == ("pooled", "full")
    assert [e.test_predictions for e in fast.fits[0].epochs] == [e.test_predictions for e in full.fits[0].epochs]
    for a, b in zip(fast.fits[0].epochs, full.fits[0].epochs, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        assert a.test.loss == pytest.approx(b.test.loss, rel=1e-5)


def test_the_routine_learns_a_separable_task(toy_env, tiny_decoder):
    task = load_tasks()["toy"]
    rec = cell.run_cell(task, local_model(tiny_decoder), RunConfig(epochs=8, learning_rate=3e-3), seed=1,
                           mirror=str(toy_env["mirror"]), log=lambda m: None)
    assert rec.fits[0].epochs[0].test.metrics["accuracy"] < 0.6  # starts at chance ...
    assert rec.protocols["published"].test["accuracy"] >= 0.85  # ... and learns
    assert rec.protocols["clean"].picked_by == "validation accuracy"
    assert len(rec.fits) == 1 and len(rec.fits[0].epochs) == 8
    assert rec.tokens.padding_efficiency > 0.5


def test_same_seed_same_numbers_other_seed_other_numbers(toy_env, tiny_decoder):
    task = load_tasks()["toy"]
    spec = local_model(tiny_decoder)
    run = lambda seed: cell.run_cell(task, spec, RunConfig(epochs=1, learning_rate=1e-3), seed=seed,  # noqa
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
