"""One fit: micro-batches, clipping, optimizer and schedule as the seed recipe's Trainer."""

import numpy as np
import pytest
import torch
from conftest import encoded_split
from tiny_models import make_encoder

from harness.config import RunConfig
from harness.data.splits import EncodedSplit
from harness.finetune import batches, cell, fit
from harness.finetune.objective import Objective
from harness.registry.load import load_tasks, local_model


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
    train = encoded_split(seqs, rng.integers(0, 2, size=16))
    fit.train_fit(model=model, train=train, validation=None, test=encoded_split(seqs[:2], [0, 1]),
                      objective=Objective("classification", ("accuracy",)),
                      cfg=cfg, seed=seed, pad_id=0, device=torch.device("cpu"), label="t", train_set="train",
                      validation_source=None, checkpoint_dir=None, log=lambda m: None)
    return model


def test_micro_batches_accumulate_the_gradient_of_the_whole_batch():
    """Gradient accumulation is exact: micro-batches of 4 (and of 3: unequal parts) give the gradient of the
    batch of 16. Compares the gradients themselves, unclipped: AdamW's first step is nearly sign(gradient)
    and clipping rescales, so the parameters after a step would not show a micro-batch scaled 4x."""
    # Exact to fp32's rounding; the dense embedding gradient, to compare every parameter's .grad.
    settings = dict(epochs=1, batch_size=16, max_grad_norm=0, precision="fp32", used_embedding_rows=False)
    full = _one_step(RunConfig(**settings))
    for micro in (4, 3):
        split = _one_step(RunConfig(**settings, micro_batch_size=micro))
        for (name, p), q in zip(full.named_parameters(), split.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


def test_clipping_at_one_is_applied():
    dense = dict(epochs=1, precision="fp32", used_embedding_rows=False)  # every parameter's .grad
    unclipped = _one_step(RunConfig(**dense, max_grad_norm=0))
    clipped = _one_step(RunConfig(**dense))  # the default: 1.0, as the seed recipe
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
    (Without dropout, which would draw different random numbers for the two; in fp32, whose rounding is fine enough
    for the 1e-5 below: bf16 autocast on the pooled rows is tested in tests/model/test_pooled_layer.py.)"""
    task = load_tasks()["toy"]
    spec = local_model(tiny_decoder if family == "decoder" else make_encoder(tmp_path / "bert", dropout=0.0))
    kwargs = dict(seed=3, limit=32, mirror=str(toy_env["mirror"]), log=lambda m: None)
    settings = dict(epochs=3, learning_rate=3e-3, precision="fp32")
    fast = cell.run_cell(task, spec, RunConfig(**settings), **kwargs)
    full = cell.run_cell(task, spec, RunConfig(**settings, pooled_last_layer=False), **kwargs)
    assert (fast.model.last_layer, full.model.last_layer) == ("pooled", "full")
    assert [e.test_predictions for e in fast.fits[0].epochs] == [e.test_predictions for e in full.fits[0].epochs]
    for a, b in zip(fast.fits[0].epochs, full.fits[0].epochs, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        assert a.test.loss == pytest.approx(b.test.loss, rel=1e-5)


def test_regression_labels_reach_the_loss_as_floats():
    split = EncodedSplit(np.array([5, 6, 7, 8], dtype=np.int32), np.array([0, 2, 4]), np.array([1.25, 4.5]))
    _, labels, _, _ = batches.collate(split, np.array([1, 0]), 0, torch.device("cpu"))
    assert labels.dtype == torch.float32 and labels.tolist() == [4.5, 1.25]


def test_an_after_epoch_hook_sees_each_epoch_and_can_stop_the_fit(toy_env, tiny_encoder):
    """The hook a search's pruner uses: it gets each epoch's metrics (validation included); a reason it returns
    stops the fit after that epoch, and the record says so (status "pruned", the reason)."""
    seen = []

    def hook(epoch):
        seen.append((epoch.epoch, epoch.validation is not None))
        return "enough" if epoch.epoch == 2 else None  # None: go on

    task = load_tasks()["toy"]
    rec = cell.run_cell(task, local_model(tiny_encoder), RunConfig(epochs=3), seed=1, limit=16,
                        mirror=str(toy_env["mirror"]), log=lambda m: None, on_epoch=hook)
    assert seen == [(1, True), (2, True)] and len(rec.fits[0].epochs) == 2
    assert (rec.status, rec.failure, rec.fits[0].stopped) == ("pruned", "enough", "enough")
    assert rec.protocols["clean"].epoch in (1, 2)  # picked among the epochs it ran
