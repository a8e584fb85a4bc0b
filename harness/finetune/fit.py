"""One fit: the training loop of the routine (harness/finetune/cell.py), with its optimizer, schedule, train step
and evaluation, under the precision of harness/finetune/precision.py. After every epoch it evaluates the
validation split (if any) and the test split and keeps both curves, so both protocols can be computed. The same
loop runs on one process and data-parallel: the distributed helpers are no-ops on one.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config import RunConfig, eval_batch_size
from harness.data.splits import EncodedSplit
from harness.errors import RunFailed
from harness.finetune import distributed as dist_mod
from harness.finetune import progress as progress_mod
from harness.finetune import sharding
from harness.finetune.batches import collate, step_with_oom_retry, train_batches
from harness.finetune.objective import Objective
from harness.finetune.precision import autocast
from harness.model import adapters, dropout_masks, embedding_rows, pooled_layer
from harness.record.schema import EpochMetrics, Fit, SplitMetrics

# ------------------------------------------------------------------ optimizer, schedule

def build_optimizer(model, cfg: RunConfig, extra: tuple = ()):
    """AdamW over the model's trainable parameters and `extra` ((name, parameter) pairs held outside the model,
    grouped by their name as the model's are)."""
    import torch

    decay, no_decay = [], []
    for name, p in [*model.named_parameters(), *extra]:
        if not p.requires_grad:
            continue
        # As the Trainer: no weight decay on biases and normalisation weights.
        (no_decay if name.endswith("bias") or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.fused_adamw:
        # The fused kernel exists for CUDA and (torch >= 2.4) CPU: 6x faster than the loop on this 2-core CPU.
        try:
            return torch.optim.AdamW(groups, lr=cfg.learning_rate, eps=cfg.adam_epsilon, fused=True)
        except (RuntimeError, TypeError):
            pass
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, eps=cfg.adam_epsilon)


def linear_schedule(optimizer, total_steps: int, warmup_steps: int):
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ------------------------------------------------------------------ one step, one evaluation

def train_step(net, optimizer, train: EncodedSplit, idx: np.ndarray, micro: int, pad_id: int, device,
               cfg: RunConfig, objective: Objective):
    """Forward and backward passes for one optimizer step over the global batch idx, in micro-batches
    of `micro`. Returns (summed loss tensor, real tokens, processed tokens) of this process's share."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    world = dist_mod.world_size()
    step_loss, real, processed = torch.zeros((), device=device), 0, 0
    # The same number of backward passes on every rank (data-parallel syncs on each).
    chunks = math.ceil(math.ceil(len(idx) / world) / micro)
    for part in np.array_split(dist_mod.shard(idx), chunks):
        weight = 1.0
        if len(part) == 0:  # a rank with nothing left still joins the sync, contributing zero
            part, weight = idx[:1], 0.0
        batch, labels, r, p = collate(train, part, pad_id, device)
        # The backward pass too: gradient checkpointing recomputes the forward there, drawing the same masks.
        with dropout_masks.attention_dropout(cfg.fast_dropout and device.type == "cpu"):
            with autocast(cfg, device):
                logits = net(**batch).logits.float()
            # Summed over the micro-batch, divided by the full batch: the gradient does not depend on how
            # the batch was split (x world: data-parallel averages over ranks).
            loss = objective.summed_loss(logits, labels) * (weight * world / len(idx))
            loss.backward()
        step_loss += loss.detach()
        if weight:
            real, processed = real + r, processed + p
    return step_loss, real, processed


def evaluate(model, split: EncodedSplit, objective: Objective, cfg: RunConfig, pad_id: int, device, on_batch=None):
    """(metrics, predictions in split order, as stored, real tokens, processed tokens). on_batch(n) after each
    batch of n examples (of this process's share), for a progress bar."""
    import torch

    model.eval()
    order = np.argsort(-split.lengths, kind="stable")  # similar lengths together; longest first
    mine = dist_mod.shard(order)
    preds = objective.empty_predictions(len(split))
    loss_sum, real, processed = 0.0, 0, 0
    sharded = sharding.is_sharded(model)
    size = eval_batch_size(cfg, device)
    # A sharded model gathers its weights in every forward, on every process: all run the same number of passes.
    passes = (sharding.forward_passes(len(split), dist_mod.world_size(), size) if sharded
              else math.ceil(len(mine) / size))
    # No inference tensors under FSDP: it gathers the weights into buffers that training reuses.
    with torch.no_grad() if sharded else torch.inference_mode():
        for s in range(0, passes * size, size):
            idx = mine[s:s + size]
            if len(idx) == 0:  # this process's share is done; it still joins the weight gathering
                with autocast(cfg, device):
                    model(**collate(split, order[:1], pad_id, device)[0])
                continue
            batch, labels, r, p = collate(split, idx, pad_id, device)
            with autocast(cfg, device):
                logits = model(**batch).logits.float()
            loss_sum += float(objective.summed_loss(logits, labels))
            preds[idx] = objective.predict(logits)
            real, processed = real + r, processed + p
            if on_batch is not None:
                on_batch(len(idx))
    preds = dist_mod.gather_predictions(preds, mine)
    loss_sum, real, processed = dist_mod.all_sum([loss_sum, real, processed])
    model.train()
    preds, values = objective.score(preds, split.labels)
    return SplitMetrics(metrics=values, loss=loss_sum / len(split)), preds, int(real), int(processed)


# ------------------------------------------------------------------ one fit

def train_fit(*, model, train: EncodedSplit, validation: EncodedSplit | None,
              test: EncodedSplit, objective: Objective, cfg: RunConfig, seed: int, pad_id: int, device,
              label: str, train_set: str, validation_source: str | None, checkpoint_dir: Path | None,
              log=None, on_epoch=None) -> Fit:
    """Train one model on `train` for cfg.epochs, evaluating validation and test after each epoch.
    log: where progress goes (harness/finetune/progress.py: None = stderr, bars on a terminal; or msg -> None).
    on_epoch(epoch metrics) after each epoch's evaluation: None to go on, or the reason to stop the fit there
    (Fit.stopped; a search's pruner uses it, harness/grid/search.py)."""
    progress = progress_mod.of(log)
    if cfg.pooled_last_layer and not pooled_layer.install(model):
        progress(f"[{label}] last layer computed in full: {pooled_layer.why_not(model)}")
    if cfg.fast_dropout and device.type == "cpu":
        dropout_masks.install(model)
    model.to(device)
    model.train()
    if cfg.sharding == "fsdp" and dist_mod.world_size() > 1:
        net = sharding.shard(model)  # in place: the sharded model is the one trained, evaluated and saved
    else:
        net = dist_mod.wrap(model, device)  # training passes; evaluation and checkpoints use the bare model
    rows = _used_rows(model, train, pad_id, cfg, progress, label)
    try:
        optimizer = build_optimizer(model, cfg, extra=((rows.name, rows.parameter),) if rows is not None else ())
        if rows is not None:
            rows.track(optimizer)
        total = math.ceil(len(train) / cfg.batch_size) * cfg.epochs
        loop = _Loop(net=net, model=model, rows=rows,
                     clipped=[*model.parameters(), *([rows.parameter] if rows is not None else [])],
                     optimizer=optimizer,
                     schedule=linear_schedule(optimizer, total, int(cfg.warmup_ratio * total)),
                     rng=np.random.default_rng(seed),  # data order follows the seed
                     micro=cfg.micro_batch_size or cfg.batch_size, train=train, objective=objective, cfg=cfg,
                     pad_id=pad_id, device=device)
        fit = Fit(train_set=train_set, validation_source=validation_source, train_examples=len(train),
                  validation_examples=len(validation) if validation is not None else 0, epochs=[], train_s=0.0,
                  eval_s=0.0, train_tokens_real=0, train_tokens_processed=0, eval_tokens_real=0,
                  eval_tokens_processed=0, steps=0, embedding_rows=len(rows) if rows is not None else None)
        _run_epochs(loop, fit, validation, test, progress, label, checkpoint_dir, on_epoch)
    except BaseException:
        if rows is not None:
            rows.remove(after_error=True)
        raise
    if rows is not None:
        rows.remove()  # the full matrix written back, the embedding trainable as it was
    # Tokens were counted per rank.
    fit.train_tokens_real, fit.train_tokens_processed = map(
        int, dist_mod.all_sum([fit.train_tokens_real, fit.train_tokens_processed]))
    return fit


def _used_rows(model, train: EncodedSplit, pad_id: int, cfg: RunConfig, progress, label: str):
    """The input embeddings' used rows as a parameter of their own (harness/model/embedding_rows.py), or None
    where the full matrix is trained (said why, unless it is frozen and so not trained at all)."""
    if not cfg.used_embedding_rows:
        return None
    target = adapters.transformers_model(model)
    if embedding_rows.is_frozen(target):
        return None
    reason = "data-parallel training" if dist_mod.world_size() > 1 else embedding_rows.why_not(target)
    if reason is not None:
        progress(f"[{label}] every row of the input embeddings trained: {reason}")
        return None
    return embedding_rows.UsedRows(target, train.ids, pad_id)


def _run_epochs(loop: _Loop, fit: Fit, validation, test, progress, label: str, checkpoint_dir: Path | None,
                on_epoch) -> None:
    """Each epoch: train, evaluate validation and test, save a checkpoint if asked, ask on_epoch whether to go on."""
    cfg = loop.cfg
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        rank_loss = _train_epoch(loop, fit, epoch, progress, label)
        fit.train_s += time.perf_counter() - t0
        # Each rank holds world x its share: the mean over ranks is the loss of the full batches.
        epoch_loss = dist_mod.all_sum([rank_loss])[0] / dist_mod.world_size()
        fit.epochs.append(_evaluate_epoch(loop.model, fit, epoch, epoch_loss, validation, test, loop.objective, cfg,
                                          loop.pad_id, loop.device, progress, label))
        _log_epoch(progress, label, fit.epochs[-1], cfg.epochs)
        if cfg.save_every_epoch and checkpoint_dir is not None:  # with LoRA: the adapters and the head
            if loop.rows is not None:
                loop.rows.write_back()
            sharding.save(loop.model, checkpoint_dir / f"{fit.train_set}-epoch{epoch}", dist_mod.is_main())
        fit.stopped = on_epoch(fit.epochs[-1]) if on_epoch is not None else None
        if fit.stopped:
            progress(f"[{label}] stopped after epoch {epoch}: {fit.stopped}")
            break


@dataclass
class _Loop:
    """What every training step of one fit uses."""
    net: object  # what the training passes run through (data-parallel or sharded wrapper, or the model)
    model: object  # the bare model
    rows: embedding_rows.UsedRows | None  # the input embeddings' used rows, trained outside the model
    clipped: list  # what the gradient clipping covers: the model's parameters and the used rows
    optimizer: object
    schedule: object
    rng: np.random.Generator
    micro: int  # the micro-batch size, halved after an out-of-memory error
    train: EncodedSplit
    objective: Objective
    cfg: RunConfig
    pad_id: int
    device: object


def _train_epoch(loop: _Loop, fit: Fit, epoch: int, progress, label: str) -> float:
    """One pass over the training split in optimizer steps; adds steps, tokens and out-of-memory retries to
    fit; returns this process's mean training loss over the epoch."""
    import torch

    cfg, device = loop.cfg, loop.device

    def free_memory():  # after an out-of-memory error, before the retry with a smaller micro-batch
        loop.optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()

    batches = train_batches(loop.train.lengths, cfg.batch_size, loop.rng, cfg.length_grouped)
    loss_sum = torch.zeros((), device=device)
    with progress.training(label, epoch, cfg.epochs, len(batches)) as shown:
        for b, idx in enumerate(batches, 1):
            (step_loss, real, processed), loop.micro = step_with_oom_retry(
                lambda m, idx=idx: train_step(loop.net, loop.optimizer, loop.train, idx, m, loop.pad_id, device,
                                              cfg, loop.objective),
                loop.micro, fit.oom_retries, fit.steps + 1, on_oom=free_memory, retry=dist_mod.world_size() == 1)
            if fit.steps == 0 and loop.rows is not None:
                loop.rows.check_trained()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(loop.clipped, cfg.max_grad_norm)
            loop.optimizer.step()
            loop.schedule.step()
            fit.steps += 1
            loss_sum += step_loss
            fit.train_tokens_real += real
            fit.train_tokens_processed += processed
            shown.advance(len(idx))
            if shown.wants_loss(b):
                mean = float(loss_sum) / b  # one sync per report, not per step
                if not math.isfinite(mean):
                    raise RunFailed(f"training diverged: loss is {mean} at epoch {epoch}, step {b} "
                                    f"(lr {cfg.learning_rate}); lower --learning-rate")
                shown.show(b, mean)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return float(loss_sum) / len(batches)


def _evaluate_epoch(model, fit: Fit, epoch: int, epoch_loss: float, validation, test, objective: Objective,
                    cfg: RunConfig, pad_id: int, device, progress, label: str) -> EpochMetrics:
    """Validation (where the fit has one) and test after an epoch; adds the time and tokens to fit."""

    def run(split, name):
        share = math.ceil(len(split) / dist_mod.world_size())  # what this process evaluates
        with progress.evaluation(f"{label} epoch {epoch}", name, share) as shown:
            return evaluate(model, split, objective, cfg, pad_id, device, on_batch=shown.advance)

    t0 = time.perf_counter()
    val_metrics = None
    if validation is not None:
        val_metrics, _, r, p = run(validation, "validation")
        fit.eval_tokens_real, fit.eval_tokens_processed = fit.eval_tokens_real + r, fit.eval_tokens_processed + p
    test_metrics, preds, r, p = run(test, "test")
    fit.eval_tokens_real, fit.eval_tokens_processed = fit.eval_tokens_real + r, fit.eval_tokens_processed + p
    fit.eval_s += time.perf_counter() - t0
    return EpochMetrics(epoch=epoch, train_loss=epoch_loss, test=test_metrics, validation=val_metrics,
                        test_predictions=objective.encode(preds))


def _log_epoch(log, label: str, e: EpochMetrics, epochs: int) -> None:
    def text(m: SplitMetrics) -> str:
        return ", ".join(f"{k} {v:.4f}" for k, v in m.metrics.items())

    val_text = f"validation {text(e.validation)}; " if e.validation else ""
    log(f"[{label}] epoch {e.epoch}/{epochs} done: {val_text}test {text(e.test)}")
