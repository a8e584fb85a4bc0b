"""The one fine-tuning routine, shared by every (task, model) cell.

Decoder models (Llama-style) classify on the last real token (transformers' *ForSequenceClassification
pools the rightmost non-pad token, so config.pad_token_id must be set); encoder models (BERT) on [CLS],
with sentence pairs encoded natively (token_type_ids). After every epoch it evaluates the validation
split (if any) and the test split and keeps both curves, so both protocols can be computed.
"""
from __future__ import annotations

import dataclasses
import math
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import adapters, pooled_layer, scores, sharding
from . import cost as cost_mod
from . import data as data_mod
from . import distributed as dist_mod
from .config import RunConfig
from .errors import RunFailed, UserError
from .provenance import device_name, harness_git, package_versions
from .record import SCHEMA_VERSION, EpochMetrics, Fit, ProtocolResult, RunRecord, SplitMetrics, variant_name
from .registry import ModelSpec, TaskSpec


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _quiet(msg: str) -> None:
    pass


# ------------------------------------------------------------------ model loading

def model_location(spec: ModelSpec, mirror: str | None) -> tuple[str, str | None]:
    """(path or hub id, revision). A mirror's DIR/<hub id>/ wins over the hub."""
    if spec.path:
        if not Path(spec.path).is_dir():
            raise UserError(f"model {spec.name}: folder '{spec.path}' does not exist")
        return spec.path, None
    if spec.package:
        import importlib

        try:
            module = importlib.import_module(spec.package)
        except ImportError:
            extra = f"pip install 'poeta-harness[{spec.extra}]'" if spec.extra else f"install {spec.package}"
            raise UserError(f"model {spec.name} needs the package '{spec.package}': {extra}") from None
        return str(module.get_model_path()), None
    folder = data_mod.mirror_root(mirror)
    if folder is not None and (folder / spec.hub_id).is_dir():
        return str(folder / spec.hub_id), None
    return spec.hub_id, spec.revision


def _load_failure(spec: ModelSpec, where: str, what: str, exc: Exception) -> UserError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    if spec.hub_id and not Path(where).is_dir():
        return UserError(f"model {spec.name}: cannot load the {what} of '{spec.hub_id}' from the hub ({reason}). "
                         f"Offline? Use --mirror DIR (or ${data_mod.MIRROR_ENV}) with the model at "
                         f"DIR/{spec.hub_id}/, or pass a local model folder as --model")
    return UserError(f"model {spec.name}: cannot load the {what} from '{where}' ({reason})")


def load_tokenizer(spec: ModelSpec, where: str, revision: str | None, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(where, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise _load_failure(spec, where, "tokenizer", exc) from None
    # transformers 5 builds an empty tokenizer (special tokens only) when a folder has no tokenizer files.
    if not hasattr(tok, "pad_token_id") or len(tok) <= len(set(tok.all_special_ids)) + 1:
        raise UserError(f"model {spec.name}: cannot load the tokenizer from '{where}' (no tokenizer files: "
                        f"save the tokenizer beside the model)")
    if tok.pad_token_id is None:
        raise UserError(f"model {spec.name}: the tokenizer has no pad token; batched classification needs one "
                        f"(add a pad token to the tokenizer, distinct from EOS for decoders)")
    if spec.family == "decoder" and tok.eos_token_id is not None and tok.pad_token_id == tok.eos_token_id:
        _stderr(f"warning: model {spec.name}: pad token equals EOS; with EOS appended to every text the "
                f"last-token pooling lands on the token before EOS")
    return tok


def load_model(spec: ModelSpec, where: str, revision: str | None, num_labels: int, label_names, tokenizer,
               cfg: RunConfig, trust_remote_code: bool, extra: dict | None = None):
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    # The load report lists the new classification head as "missing": expected here, so kept quiet.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            where, revision=revision, num_labels=num_labels,
            id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
            attn_implementation=cfg.attn_implementation, trust_remote_code=trust_remote_code, **(extra or {}))
    except Exception as exc:
        raise _load_failure(spec, where, "model", exc) from None
    # The pooling of decoders reads config.pad_token_id; the tokenizer's pad token alone is not enough.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


# ------------------------------------------------------------------ batches

def train_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, grouped: bool) -> list[np.ndarray]:
    """Random batches; with grouping, each window of 50 batches is sorted by length before it is cut,
    so a batch holds texts of similar length, and the batches are then shuffled."""
    perm = rng.permutation(len(lengths))
    if not grouped:
        return [perm[i:i + batch_size] for i in range(0, len(perm), batch_size)]
    window = batch_size * 50
    batches = []
    for w in range(0, len(perm), window):
        chunk = perm[w:w + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(split: data_mod.EncodedSplit, idx: np.ndarray, pad_id: int, device):
    import torch

    lengths = split.lengths[idx]
    width = int(lengths.max())
    ids = np.full((len(idx), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(idx), width), dtype=np.int64)
    types = np.zeros((len(idx), width), dtype=np.int64) if split.type_ids is not None else None
    for row, i in enumerate(idx):
        a, b = split.offsets[i], split.offsets[i + 1]
        ids[row, :b - a] = split.ids[a:b]
        mask[row, :b - a] = 1
        if types is not None:
            types[row, :b - a] = split.type_ids[a:b]
    pin = device.type == "cuda"
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
    if types is not None:
        batch["token_type_ids"] = torch.from_numpy(types)
    batch = {k: (v.pin_memory() if pin else v).to(device, non_blocking=pin) for k, v in batch.items()}
    labels = torch.from_numpy(split.labels[idx]).to(device, non_blocking=pin)
    return batch, labels, int(lengths.sum()), len(idx) * width


# ------------------------------------------------------------------ out of memory policy

def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def halve_micro_batch(micro: int) -> int | None:
    """The next micro-batch after an out-of-memory error (accumulation doubles), or None at 1."""
    return None if micro <= 1 else micro // 2


def step_with_oom_retry(step, micro: int, events: list, step_no: int, on_oom=None, retry: bool = True):
    """Run step(micro); on out-of-memory, halve the micro-batch (the effective batch is unchanged) and
    retry the same step; give up at micro-batch 1. Returns (result, micro) so later steps keep the size.
    retry=False (data-parallel runs, where one rank can't retry alone) turns an OOM into a failed run."""
    while True:
        try:
            return step(micro), micro
        except Exception as exc:
            if not is_oom(exc):
                raise
            if not retry:
                raise RunFailed(f"out of memory at step {step_no} with {dist_mod.world_size()} processes; "
                                f"pass a smaller --micro-batch-size") from None
            smaller = halve_micro_batch(micro)
            if smaller is None:
                raise RunFailed(f"out of memory at micro-batch 1 (step {step_no}); use a smaller model, "
                                f"a shorter max_length or a larger GPU") from None
            events.append({"step": step_no, "micro_batch": smaller})
            if on_oom is not None:
                on_oom()
            micro = smaller


# ------------------------------------------------------------------ train and evaluate

class _Precision:
    def __init__(self, cfg: RunConfig, device):
        import torch

        self.bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
        self.device_type = device.type
        self.torch = torch

    def autocast(self):
        return self.torch.autocast(self.device_type, dtype=self.torch.bfloat16, enabled=self.bf16)


def evaluate(model, split: data_mod.EncodedSplit, num_classes: int, cfg: RunConfig, pad_id: int, device, prec):
    import torch
    import torch.nn.functional as F

    model.eval()
    order = np.argsort(-split.lengths, kind="stable")  # similar lengths together; longest first
    world = dist_mod.world_size()
    mine = dist_mod.shard(order) if world > 1 else order
    preds = np.zeros(len(split), dtype=np.int64)
    loss_sum, real, processed = 0.0, 0, 0
    sharded = world > 1 and sharding.is_sharded(model)
    passes = sharding.forward_passes(len(split), world, cfg.eval_batch_size) if sharded else \
        math.ceil(len(mine) / cfg.eval_batch_size)
    # No inference tensors under FSDP: it gathers the weights into buffers that training reuses.
    with torch.no_grad() if sharded else torch.inference_mode():
        for s in range(0, passes * cfg.eval_batch_size, cfg.eval_batch_size):
            idx = mine[s:s + cfg.eval_batch_size]
            if len(idx) == 0:  # this process's share is done; it still joins the weight gathering
                with prec.autocast():
                    model(**collate(split, order[:1], pad_id, device)[0])
                continue
            batch, labels, r, p = collate(split, idx, pad_id, device)
            with prec.autocast():
                logits = model(**batch).logits.float()
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            preds[idx] = logits.argmax(-1).cpu().numpy()
            real, processed = real + r, processed + p
    if world > 1:
        preds = dist_mod.gather_predictions(preds, mine)
        loss_sum, real, processed = dist_mod.all_sum([loss_sum, real, processed])
        real, processed = int(real), int(processed)
    model.train()
    gold = split.labels
    metrics = SplitMetrics(accuracy=scores.accuracy(preds, gold), macro_f1=scores.macro_f1(preds, gold, num_classes),
                           loss=loss_sum / len(split))
    return metrics, preds, real, processed


def _optimizer(model, cfg: RunConfig, device):
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


def _linear_schedule(optimizer, total_steps: int, warmup_steps: int):
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_fit(*, model, train: data_mod.EncodedSplit, validation: data_mod.EncodedSplit | None,
              test: data_mod.EncodedSplit, num_classes: int, cfg: RunConfig, seed: int, pad_id: int, device,
              label: str, train_set: str, validation_source: str | None, checkpoint_dir: Path | None,
              log=_stderr) -> Fit:
    import torch
    import torch.nn.functional as F

    prec = _Precision(cfg, device)
    if cfg.pooled_last_layer:
        pooled_layer.install(adapters.transformers_model(model), pad_id)
    model.to(device)
    model.train()
    world = dist_mod.world_size()
    net = model  # evaluation and checkpoints use the bare model
    if world > 1 and cfg.sharding == "fsdp":
        net = model = sharding.shard(model)  # in place: the sharded model is the one evaluated and saved
    elif world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                          else None)
    optimizer = _optimizer(net, cfg, device)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    schedule = _linear_schedule(optimizer, total, int(cfg.warmup_ratio * total))
    rng = np.random.default_rng(seed)  # data order follows the seed
    micro = cfg.micro_batch_size or cfg.batch_size
    fit = Fit(train_set=train_set, validation_source=validation_source, train_examples=len(train),
              validation_examples=len(validation) if validation is not None else 0, epochs=[], train_s=0.0,
              eval_s=0.0, train_tokens_real=0, train_tokens_processed=0, eval_tokens_real=0,
              eval_tokens_processed=0, steps=0)

    def empty_cache():
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()

    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        batches = train_batches(train.lengths, cfg.batch_size, rng, cfg.length_grouped)
        loss_sum = torch.zeros((), device=device)
        report_every = max(1, len(batches) // 5)
        for b, idx in enumerate(batches, 1):
            def step(micro_size, idx=idx):
                optimizer.zero_grad(set_to_none=True)
                step_loss, real, processed = torch.zeros((), device=device), 0, 0
                local = dist_mod.shard(idx) if world > 1 else idx
                # The same number of backward passes on every rank (data-parallel syncs on each).
                chunks = math.ceil(math.ceil(len(idx) / world) / micro_size)
                for part in np.array_split(local, chunks):
                    weight = 1.0
                    if len(part) == 0:  # a rank with nothing left still joins the sync, contributing zero
                        part, weight = idx[:1], 0.0
                    batch, labels, r, p = collate(train, part, pad_id, device)
                    with prec.autocast():
                        logits = model(**batch).logits.float()
                    # Summed over the micro-batch, divided by the full batch: the gradient does not
                    # depend on how the batch was split (x world: data-parallel averages over ranks).
                    loss = F.cross_entropy(logits, labels, reduction="sum") * (weight * world / len(idx))
                    loss.backward()
                    step_loss += loss.detach()
                    if weight:
                        real, processed = real + r, processed + p
                return step_loss, real, processed

            (step_loss, real, processed), micro = step_with_oom_retry(step, micro, fit.oom_retries, fit.steps + 1,
                                                                       on_oom=empty_cache, retry=world == 1)
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            optimizer.step()
            schedule.step()
            fit.steps += 1
            loss_sum += step_loss
            fit.train_tokens_real += real
            fit.train_tokens_processed += processed
            if b % report_every == 0 or b == len(batches):
                mean = float(loss_sum) / b  # one sync per report, not per step
                if not math.isfinite(mean):
                    raise RunFailed(f"training diverged: loss is {mean} at epoch {epoch}, step {b} "
                                    f"(lr {cfg.learning_rate}); lower --learning-rate")
                log(f"[{label}] epoch {epoch}/{cfg.epochs} step {b}/{len(batches)} loss {mean:.4f} "
                    f"({time.perf_counter() - t0:.0f}s)")
        if device.type == "cuda":
            torch.cuda.synchronize()
        fit.train_s += time.perf_counter() - t0
        epoch_loss = float(loss_sum) / len(batches)
        if world > 1:  # each rank holds W x its share: the mean over ranks is the loss of the full batches
            epoch_loss = dist_mod.all_sum([epoch_loss])[0] / world

        t0 = time.perf_counter()
        val_metrics = None
        if validation is not None:
            val_metrics, _, r, p = evaluate(net, validation, num_classes, cfg, pad_id, device, prec)
            fit.eval_tokens_real, fit.eval_tokens_processed = fit.eval_tokens_real + r, fit.eval_tokens_processed + p
        test_metrics, preds, r, p = evaluate(net, test, num_classes, cfg, pad_id, device, prec)
        fit.eval_tokens_real, fit.eval_tokens_processed = fit.eval_tokens_real + r, fit.eval_tokens_processed + p
        fit.eval_s += time.perf_counter() - t0
        fit.epochs.append(EpochMetrics(epoch=epoch, train_loss=epoch_loss, test=test_metrics,
                                       validation=val_metrics, test_predictions=scores.encode_ids(preds)))
        val_text = f"validation acc {val_metrics.accuracy:.4f}, " if val_metrics else ""
        log(f"[{label}] epoch {epoch}/{cfg.epochs} done: {val_text}test acc {test_metrics.accuracy:.4f}, "
            f"macro-F1 {test_metrics.macro_f1:.4f}")
        if cfg.save_every_epoch and checkpoint_dir is not None:  # with LoRA: the adapters and the head
            if world > 1 and cfg.sharding == "fsdp":
                sharding.save(net, checkpoint_dir / f"{train_set}-epoch{epoch}", dist_mod.is_main())
            elif dist_mod.is_main():
                net.save_pretrained(checkpoint_dir / f"{train_set}-epoch{epoch}")
    if world > 1:  # tokens were counted per rank
        sums = dist_mod.all_sum([fit.train_tokens_real, fit.train_tokens_processed])
        fit.train_tokens_real, fit.train_tokens_processed = int(sums[0]), int(sums[1])
    return fit


# ------------------------------------------------------------------ one cell

def resolve_device(cfg: RunConfig):
    import torch

    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(cfg.device)
    except RuntimeError:
        raise UserError(f"unknown device '{cfg.device}': use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{cfg.device}' asked for, but no CUDA GPU is visible: use --device cpu")
    return device


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
             use_cache: bool = True, log=_stderr) -> RunRecord:
    import torch

    t_start = time.perf_counter()
    if model_spec.trust_remote_code and not allow_remote_code:
        raise UserError(f"model {model_spec.name} asks to run code from its repository: pass --trust-remote-code "
                        f"if you trust it")
    device = resolve_device(cfg)
    adapters.check_supported(cfg, device.type)  # QLoRA without CUDA stops here, before anything is loaded
    cost_mod.check_country(cfg.emissions_country)
    world = dist_mod.world_size()
    if cfg.sharding == "fsdp" and world == 1:
        raise UserError("--sharding fsdp shards the model over several processes: add --processes N (N >= 2)")
    if world > 1:
        device = dist_mod.init(device.type)
        if not dist_mod.is_main():
            log = _quiet
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
        torch.cuda.reset_peak_memory_stats(device)
    trust = model_spec.trust_remote_code and allow_remote_code
    label = f"{task.name}/{model_spec.name} seed {seed}"

    t0 = time.perf_counter()
    where, revision = model_location(model_spec, mirror)
    tokenizer = load_tokenizer(model_spec, where, revision, trust)
    from transformers import AutoConfig

    try:
        mconf = AutoConfig.from_pretrained(where, revision=revision, trust_remote_code=trust)
    except Exception as exc:
        raise _load_failure(model_spec, where, "config", exc) from None
    t_model_meta = time.perf_counter() - t0
    data = data_mod.prepare(task, tokenizer, model_spec.family,
                            max_positions=getattr(mconf, "max_position_embeddings", None), mirror=mirror,
                            limit=limit, use_cache=use_cache)
    log(f"[{label}] data: {', '.join(f'{k} {len(v)}' for k, v in data.splits.items())} "
        f"(tokenization cache {'hit' if data.cache_hit else 'miss'})")

    fits, model_info, adaptation, t_load_models = [], {}, {}, 0.0
    with cost_mod.Tracker(cfg.emissions_country, device) as tracker:  # loading, training, evaluation
        for plan in plan_fits(task, data, cfg):
            t0 = time.perf_counter()
            torch.manual_seed(seed)  # the classification head's initialisation follows the seed
            model = load_model(model_spec, where, revision, task.label.num_classes, task.label.names, tokenizer, cfg,
                               trust, extra=adapters.load_options(cfg, device))
            model_info = {"revision_resolved": getattr(model.config, "_commit_hash", None) or revision,
                          "attn_implementation": getattr(model.config, "_attn_implementation", None),
                          "parameters": adapters.count_parameters(model)[1]}
            model, adaptation = adapters.prepare(model, cfg)  # LoRA / QLoRA wrapping, gradient checkpointing
            adaptation["sharding"] = cfg.sharding if world > 1 else "none"
            t_load_models += time.perf_counter() - t0
            # Asked here, before sharding swaps the layers' classes (train_fit's own install is then a no-op).
            pooled = cfg.pooled_last_layer and pooled_layer.install(adapters.transformers_model(model),
                                                                    tokenizer.pad_token_id)
            fits.append(train_fit(model=model, train=plan["train"], validation=plan["validation"],
                                  test=data.splits["test"], num_classes=task.label.num_classes, cfg=cfg, seed=seed,
                                  pad_id=tokenizer.pad_token_id, device=device, label=label,
                                  train_set=plan["train_set"], validation_source=plan["validation_source"],
                                  checkpoint_dir=checkpoint_dir, log=log))
            model_info["last_layer"] = "pooled" if pooled else "full"
            del model

    fit_dicts = [dataclasses.asdict(f) for f in fits]
    train_real = sum(f.train_tokens_real for f in fits)
    train_proc = sum(f.train_tokens_processed for f in fits)
    if device.type == "cuda":
        peak = {"bytes": int(torch.cuda.max_memory_allocated(device)), "kind": "cuda max allocated"}
    else:
        peak = {"bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "kind": "process peak RSS"}
    train_s, eval_s = sum(f.train_s for f in fits), sum(f.eval_s for f in fits)
    cost = tracker.result
    if world > 1 and cost_mod.rank_values(cost):  # each process measured itself
        cost = cost_mod.combine_ranks(cost, dist_mod.all_sum(cost_mod.rank_values(cost)))
    return RunRecord(
        schema_version=SCHEMA_VERSION, status="complete",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        task={"name": task.name, "display_name": task.display_name, "hub_id": task.hub_id,
              "revision_requested": task.revision, "revision_resolved": data.revision, "source": data.source},
        model={"name": model_spec.name, "display_name": model_spec.display_name, "family": model_spec.family,
               "source": model_spec.source, "location": where, **model_info},
        variant=variant_name(cfg.recipe_overrides(), limit), seed=seed,
        hyperparameters=dataclasses.asdict(cfg), overrides=cfg.overrides(), limit=limit,
        dataset_sizes={k: len(v) for k, v in data.splits.items()} | (
            {"carved_validation": int(len(data.carved["validation"]))} if data.carved is not None else {}),
        test_labels=scores.encode_ids(data.splits["test"].labels), fits=fits,
        protocols={k: (ProtocolResult(**v) if v else None) for k, v in scores.protocols(fit_dicts).items()},
        timings={"load_s": data.timings["load_s"] + t_model_meta + t_load_models,
                 "tokenize_s": data.timings["tokenize_s"], "train_s": train_s, "eval_s": eval_s,
                 "total_s": time.perf_counter() - t_start},
        tokens={"train_real": train_real, "train_processed": train_proc,
                "eval_real": sum(f.eval_tokens_real for f in fits),
                "eval_processed": sum(f.eval_tokens_processed for f in fits),
                "padding_efficiency": train_real / train_proc if train_proc else None},
        peak_memory=peak, device=(f"{world} x " if world > 1 else "") + device_name(device),
        packages=package_versions(), harness=harness_git(),
        data_cache={"fingerprint": data.fingerprint, "hit": data.cache_hit}, adaptation=adaptation, cost=cost)
