"""The one fine-tuning routine, shared by every (task, model) cell.

Decoder models (Llama-style) classify on the last real token (transformers' *ForSequenceClassification
pools the rightmost non-pad token, so config.pad_token_id must be set); encoder models (BERT) on [CLS],
with sentence pairs encoded natively (token_type_ids). A cell is one or two fits (plan_fits); each
fit is the training loop of harness/finetune/fit.py.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from harness.config import RunConfig
from harness.data import prepare as data_mod
from harness.errors import UserError
from harness.finetune import allocator, energy
from harness.finetune import distributed as dist_mod
from harness.finetune import progress as progress_mod
from harness.finetune.fit import train_fit
from harness.finetune.objective import objective_of
from harness.finetune.precision import precision_and_reason
from harness.hub import mirror_lock
from harness.model import adapters, loading, pooled_layer
from harness.record.build import success_record
from harness.record.provenance import model_provenance
from harness.record.schema import RunRecord
from harness.registry.specs import ModelSpec, TaskSpec

# transformers' convention for a one-output regression head (the routine computes its own loss, objective.py;
# the config records what the head is). Classification keeps the model's default.
_PROBLEM_TYPES = {"regression": "regression"}


def _quiet(msg: str) -> None:
    pass


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


@dataclass
class _Source:
    """Where the model comes from, as located once per cell and loaded once per fit."""
    spec: ModelSpec
    where: str  # hub id or folder
    revision: str | None
    tokenizer: object
    config: object
    trust: bool  # run code from the model's repository
    locked_commit: str | None  # the commit a mirror's lock file names for the folder, if any


def run_cell(task: TaskSpec, model_spec: ModelSpec, cfg: RunConfig, *, seed: int, limit: int | None = None,
             mirror: str | None = None, allow_remote_code: bool = False, checkpoint_dir: Path | None = None,
             use_cache: bool = True, log=None, on_epoch=None) -> RunRecord:
    """Load the model and the data, run the fits the protocols need, and return the cell's record.
    on_epoch: called after each epoch of each fit (fit.train_fit); a reason it returns stops that fit."""
    import torch  # noqa: F401  (imported before the clock starts: total_s is the cell's, not the import's)

    t_start = time.perf_counter()
    device = _prepare_device(model_spec, cfg, allow_remote_code)
    progress = progress_mod.of(log if dist_mod.is_main() else _quiet)
    label = f"{task.name}/{model_spec.name} seed {seed}"

    t0 = time.perf_counter()
    source = _locate(model_spec, mirror, model_spec.trust_remote_code and allow_remote_code)
    t_model_meta = time.perf_counter() - t0
    data = data_mod.prepare(task, source.tokenizer, model_spec.family,
                            max_positions=getattr(source.config, "max_position_embeddings", None), mirror=mirror,
                            limit=limit, use_cache=use_cache,
                            # Segment ids only where the model embeds them (BERT; not RoBERTa, DeBERTa, ModernBERT).
                            token_types=(getattr(source.config, "type_vocab_size", 0) or 0) > 1)
    progress(f"[{label}] data{_from(data.source, mirror)}: "
             f"{', '.join(f'{k} {len(v)}' for k, v in data.splits.items())} "
             f"(tokenization cache {'hit' if data.cache_hit else 'miss'})")
    plans = plan_fits(task, data, cfg)
    evaluated = [len(data.splits["test"]) + (0 if p["validation"] is None else len(p["validation"])) for p in plans]
    progress.plan_cell(train_examples=cfg.epochs * sum(len(p["train"]) for p in plans),
                       eval_examples=cfg.epochs * sum(evaluated))  # after every epoch of every fit

    # Resolved once, for the model at hand: the fits run in it, the record says it and why.
    precision, precision_reason = precision_and_reason(cfg, device, getattr(source.config, "model_type", None))
    fit_cfg = dataclasses.replace(cfg, precision=precision)
    fits, loaded, adaptation, t_load_models = [], {}, None, 0.0
    with energy.Tracker(cfg.emissions_country, device) as tracker, \
            allocator.keep_freed_memory(cfg.keep_freed_memory and device.type == "cpu"):  # loading, training, eval
        for plan in plans:
            fit, loaded, adaptation, load_s = _run_fit(plan, task, source, data, fit_cfg, seed, device, label,
                                                       checkpoint_dir, progress, on_epoch)
            fits.append(fit)
            t_load_models += load_s
    cost = energy.combine_ranks(tracker.result, dist_mod.all_sum)  # each process measured itself

    return success_record(task=task, model_spec=model_spec, cfg=cfg, seed=seed, limit=limit, data=data, fits=fits,
                          location=source.where, loaded=loaded, device=device,
                          precision=precision, precision_reason=precision_reason,
                          load_s=data.timings["load_s"] + t_model_meta + t_load_models,
                          total_s=time.perf_counter() - t_start, processes=dist_mod.world_size(),
                          adaptation=adaptation, cost=cost)


def _from(source: str, mirror: str | None) -> str:
    """Where the data came from, for the data line: said where it is the copy shipped in the package, and why."""
    if source != "embedded":
        return ""
    from harness import embedded
    from harness.hub.mirror import mirror_root

    root = mirror_root(mirror)
    if root is not None and embedded.holds(root):
        return " (the copy shipped in the package)"
    return " (the copy shipped in the package: the hub is offline or unreachable, and no mirror has it)"


def _prepare_device(model_spec: ModelSpec, cfg: RunConfig, allow_remote_code: bool):
    """What this run may not do stops here, before anything loads; then the device, set up as cfg says."""
    import torch

    if model_spec.trust_remote_code and not allow_remote_code:
        raise UserError(f"model {model_spec.name} asks to run code from its repository: pass --trust-remote-code "
                        f"if you trust it")
    device = loading.resolve_device(cfg)
    adapters.check_supported(cfg, device.type)  # QLoRA without CUDA stops here, before anything is loaded
    energy.check_country(cfg.emissions_country)
    if cfg.sharding == "fsdp" and dist_mod.world_size() == 1:
        raise UserError("--sharding fsdp shards the model over several processes: add --processes N (N >= 2)")
    if dist_mod.world_size() > 1:
        device = dist_mod.init(device.type)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.tf32
        torch.backends.cudnn.allow_tf32 = cfg.tf32
        torch.cuda.reset_peak_memory_stats(device)
    return device


def _locate(model_spec: ModelSpec, mirror: str | None, trust: bool) -> _Source:
    """The model's location, tokenizer and config (the weights load once per fit)."""
    where, revision = loading.model_location(model_spec, mirror)
    lock = mirror_lock.verify_location(where, model_spec.hub_id)  # a mirror folder with a lock: checked
    return _Source(spec=model_spec, where=where, revision=revision,
                   tokenizer=loading.load_tokenizer(model_spec, where, revision, trust),
                   config=loading.load_config(model_spec, where, revision, trust), trust=trust,
                   locked_commit=lock.commit if lock else None)


def _run_fit(plan: dict, task: TaskSpec, source: _Source, data, cfg: RunConfig, seed: int, device, label: str,
             checkpoint_dir: Path | None, progress, on_epoch=None):
    """Load a fresh model (head seeded), train it on one plan of plan_fits; (fit, what the load revealed,
    adaptation, load seconds)."""
    import torch

    t0 = time.perf_counter()
    torch.manual_seed(seed)  # the classification head's initialisation follows the seed
    model = loading.load_model(source.spec, source.where, source.revision, task.num_labels,
                              task.label.names or ("score",), source.tokenizer, cfg, source.trust,
                              problem_type=_PROBLEM_TYPES.get(task.type), extra=adapters.load_options(cfg, device))
    model, adaptation = adapters.prepare(model, cfg)  # LoRA / QLoRA wrapping, gradient checkpointing
    adaptation.sharding = cfg.sharding
    load_s = time.perf_counter() - t0
    fit = train_fit(model=model, train=plan["train"], validation=plan["validation"], test=data.splits["test"],
                    objective=objective_of(task), cfg=cfg, seed=seed, pad_id=source.tokenizer.pad_token_id,
                    device=device, label=label, train_set=plan["train_set"],
                    validation_source=plan["validation_source"], checkpoint_dir=checkpoint_dir, log=progress,
                    on_epoch=on_epoch)
    config = adapters.transformers_model(model).config
    loaded = {"attn_implementation": getattr(config, "_attn_implementation", None),
              "parameters": adaptation.base_parameters,
              "last_layer": pooled_layer.which_ran(model),
              **model_provenance(source.spec, source.where, source.locked_commit
                                 or getattr(config, "_commit_hash", None) or source.revision)}
    return fit, loaded, adaptation, load_s
