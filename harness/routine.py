"""The one fine-tuning routine, shared by every (task, model) cell.

Decoder models (Llama-style) classify on the last real token (transformers' *ForSequenceClassification
pools the rightmost non-pad token, so config.pad_token_id must be set); encoder models (BERT) on [CLS],
with sentence pairs encoded natively (token_type_ids). After every epoch it evaluates the validation
split (if any) and the test split and keeps both curves, so both protocols can be computed.
The same loop runs on one process and data-parallel: the distributed helpers are no-ops on one.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from . import adapters, mirror_lock, models, pooled_layer, sharding
from . import cost as cost_mod
from . import data as data_mod
from . import distributed as dist_mod
from . import progress as progress_mod
from .batches import collate, step_with_oom_retry, train_batches
from .config import RunConfig
from .errors import RunFailed, UserError
from .objective import Objective, objective_of
from .provenance import model_provenance
from .record import EpochMetrics, Fit, RunRecord, SplitMetrics, success_record
from .registry import ModelSpec, TaskSpec
from .splits import EncodedSplit

# transformers' convention for a one-output regression head (the routine computes its own loss, objective.py;
# the config records what the head is). Classification keeps the model's default.
_PROBLEM_TYPES = {"regression": "regression"}


def _quiet(msg: str) -> None:
    pass


# ------------------------------------------------------------------ precision, optimizer, schedule

def resolved_precision(cfg: RunConfig, device) -> str:
    """What `precision` means on this device: "bf16" (autocast, fp32 master weights) or "fp32"."""
    return "bf16" if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda") else "fp32"


def autocast(cfg: RunConfig, device):
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolved_precision(cfg, device) == "bf16")


def build_optimizer(model, cfg: RunConfig):
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
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
    # A sharded model gathers its weights in every forward, on every process: all run the same number of passes.
    passes = sharding.forward_passes(len(split), dist_mod.world_size(), cfg.eval_batch_size) if sharded else \
        math.ceil(len(mine) / cfg.eval_batch_size)
    # No inference tensors under FSDP: it gathers the weights into buffers that training reuses.
    with torch.no_grad() if sharded else torch.inference_mode():
        for s in range(0, passes * cfg.eval_batch_size, cfg.eval_batch_size):
            idx = mine[s:s + cfg.eval_batch_size]
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
              log=None) -> Fit:
    """Train one model on `train` for cfg.epochs, evaluating validation and test after each epoch.
    log: where progress goes (harness/progress.py: None = stderr, bars on a terminal; or msg -> None).
    One loop, top to bottom, on purpose (a little over 60 lines): the order of seeding, batching,
    stepping and evaluating is the experiment, and reads best in one place."""
    import torch

    progress = progress_mod.of(log)
    if cfg.pooled_last_layer and not pooled_layer.install(model):
        progress(f"[{label}] last layer computed in full: {pooled_layer.why_not(model)}")
    model.to(device)
    model.train()
    if cfg.sharding == "fsdp" and dist_mod.world_size() > 1:
        net = sharding.shard(model)  # in place: the sharded model is the one trained, evaluated and saved
    else:
        net = dist_mod.wrap(model, device)  # training passes; evaluation and checkpoints use the bare model
    optimizer = build_optimizer(model, cfg)
    total = math.ceil(len(train) / cfg.batch_size) * cfg.epochs
    schedule = linear_schedule(optimizer, total, int(cfg.warmup_ratio * total))
    rng = np.random.default_rng(seed)  # data order follows the seed
    micro = cfg.micro_batch_size or cfg.batch_size
    fit = Fit(train_set=train_set, validation_source=validation_source, train_examples=len(train),
              validation_examples=len(validation) if validation is not None else 0, epochs=[], train_s=0.0,
              eval_s=0.0, train_tokens_real=0, train_tokens_processed=0, eval_tokens_real=0,
              eval_tokens_processed=0, steps=0)

    def free_memory():  # after an out-of-memory error, before the retry with a smaller micro-batch
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()

    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        batches = train_batches(train.lengths, cfg.batch_size, rng, cfg.length_grouped)
        loss_sum = torch.zeros((), device=device)
        with progress.training(label, epoch, cfg.epochs, len(batches)) as shown:
            for b, idx in enumerate(batches, 1):
                (step_loss, real, processed), micro = step_with_oom_retry(
                    lambda m, idx=idx: train_step(net, optimizer, train, idx, m, pad_id, device, cfg, objective),
                    micro, fit.oom_retries, fit.steps + 1, on_oom=free_memory, retry=dist_mod.world_size() == 1)
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                schedule.step()
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
        fit.train_s += time.perf_counter() - t0
        # Each rank holds world x its share: the mean over ranks is the loss of the full batches.
        epoch_loss = dist_mod.all_sum([float(loss_sum) / len(batches)])[0] / dist_mod.world_size()
        fit.epochs.append(_evaluate_epoch(model, fit, epoch, epoch_loss, validation, test, objective, cfg, pad_id,
                                          device, progress, label))
        _log_epoch(progress, label, fit.epochs[-1], cfg.epochs)
        if cfg.save_every_epoch and checkpoint_dir is not None:  # with LoRA: the adapters and the head
            sharding.save(model, checkpoint_dir / f"{train_set}-epoch{epoch}", dist_mod.is_main())
    # Tokens were counted per rank.
    fit.train_tokens_real, fit.train_tokens_processed = map(
        int, dist_mod.all_sum([fit.train_tokens_real, fit.train_tokens_processed]))
    return fit


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


# ------------------------------------------------------------------ one cell

def plan_fits(task: TaskSpec, data: data_mod.TaskData, cfg: RunConfig) -> list[dict]:
    """Which trainings a cell needs: one where the task has a validation split; where validation is
    carved from train, the whole train split for the published protocol and the rest for the clean one."""
    s = data.splits
    if "validation" in s:
        return [dict(train_set="train", train=s["train"], validation=s["validation"], validation_source="split")]
    fits = []
    if cfg.protocols in ("both", "published") or data.carved is None:
        fits.append(dict(train_set="train", train=s["train"], validation=None, validation_source=None))
    if data.carved is not None and cfg.protocols in ("both", "clean"):
        fits.append(dict(train_set="train-minus-carved", train=s["train"].subset(data.carved["train"]),
                         validation=s["train"].subset(data.carved["validation"]), validation_source="carved"))
    return fits


def run_cell(task: TaskSpec, model_spec: ModelSpec, cfg: RunConfig, *, seed: int, limit: int | None = None,
             mirror: str | None = None, allow_remote_code: bool = False, checkpoint_dir: Path | None = None,
             use_cache: bool = True, log=None) -> RunRecord:
    """Load the model and the data, run the fits the protocols need, and return the cell's record."""
    import torch

    t_start = time.perf_counter()
    if model_spec.trust_remote_code and not allow_remote_code:
        raise UserError(f"model {model_spec.name} asks to run code from its repository: pass --trust-remote-code "
                        f"if you trust it")
    device = models.resolve_device(cfg)
    adapters.check_supported(cfg, device.type)  # QLoRA without CUDA stops here, before anything is loaded
    cost_mod.check_country(cfg.emissions_country)
    if cfg.sharding == "fsdp" and dist_mod.world_size() == 1:
        raise UserError("--sharding fsdp shards the model over several processes: add --processes N (N >= 2)")
    if dist_mod.world_size() > 1:
        device = dist_mod.init(device.type)
    progress = progress_mod.of(log if dist_mod.is_main() else _quiet)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
        torch.cuda.reset_peak_memory_stats(device)
    trust = model_spec.trust_remote_code and allow_remote_code
    label = f"{task.name}/{model_spec.name} seed {seed}"

    t0 = time.perf_counter()
    where, revision = models.model_location(model_spec, mirror)
    model_lock = mirror_lock.verify_location(where, model_spec.hub_id)  # a mirror folder with a lock: checked
    tokenizer = models.load_tokenizer(model_spec, where, revision, trust)
    mconf = models.load_config(model_spec, where, revision, trust)
    t_model_meta = time.perf_counter() - t0
    data = data_mod.prepare(task, tokenizer, model_spec.family,
                            max_positions=getattr(mconf, "max_position_embeddings", None), mirror=mirror,
                            limit=limit, use_cache=use_cache,
                            # Segment ids only where the model embeds them (BERT; not RoBERTa, DeBERTa, ModernBERT).
                            token_types=(getattr(mconf, "type_vocab_size", 0) or 0) > 1)
    progress(f"[{label}] data: {', '.join(f'{k} {len(v)}' for k, v in data.splits.items())} "
             f"(tokenization cache {'hit' if data.cache_hit else 'miss'})")

    fits, loaded, adaptation, t_load_models = [], {}, None, 0.0
    with cost_mod.Tracker(cfg.emissions_country, device) as tracker:  # loading, training, evaluation
        for plan in plan_fits(task, data, cfg):
            t0 = time.perf_counter()
            torch.manual_seed(seed)  # the classification head's initialisation follows the seed
            model = models.load_model(model_spec, where, revision, task.num_labels, task.label.names or ("score",),
                                      tokenizer, cfg, trust, problem_type=_PROBLEM_TYPES.get(task.type),
                                      extra=adapters.load_options(cfg, device))
            model, adaptation = adapters.prepare(model, cfg)  # LoRA / QLoRA wrapping, gradient checkpointing
            adaptation.sharding = cfg.sharding
            t_load_models += time.perf_counter() - t0
            fits.append(train_fit(model=model, train=plan["train"], validation=plan["validation"],
                                  test=data.splits["test"], objective=objective_of(task), cfg=cfg, seed=seed,
                                  pad_id=tokenizer.pad_token_id, device=device, label=label,
                                  train_set=plan["train_set"], validation_source=plan["validation_source"],
                                  checkpoint_dir=checkpoint_dir, log=progress))
            config = adapters.transformers_model(model).config
            loaded = {"attn_implementation": getattr(config, "_attn_implementation", None),
                      "parameters": adaptation.base_parameters,
                      "last_layer": pooled_layer.which_ran(model),
                      **model_provenance(model_spec, where, (model_lock and model_lock.commit)
                                         or getattr(config, "_commit_hash", None) or revision)}
            del model
    cost = cost_mod.combine_ranks(tracker.result, dist_mod.all_sum)  # each process measured itself

    return success_record(task=task, model_spec=model_spec, cfg=cfg, seed=seed, limit=limit, data=data, fits=fits,
                          location=where, loaded=loaded, device=device, precision=resolved_precision(cfg, device),
                          load_s=data.timings["load_s"] + t_model_meta + t_load_models,
                          total_s=time.perf_counter() - t_start, adaptation=adaptation, cost=cost)
