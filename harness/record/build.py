"""Building run records: a complete run's from its fits and what was loaded, a failed run's from its reason.
The schema they fill: harness/record/schema.py."""
from __future__ import annotations

import dataclasses

from harness.record.schema import (
    SCHEMA_VERSION,
    Adaptation,
    Cost,
    DataCache,
    Fit,
    HarnessInfo,
    ModelInfo,
    PeakMemory,
    RunRecord,
    SubsetInfo,
    TaskInfo,
    Timings,
    Tokens,
)
from harness.redact import portable_path


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def success_record(*, task, model_spec, cfg, seed: int, limit: int | None, data, fits: list[Fit], location: str,
                   loaded: dict, device, precision: str, load_s: float, total_s: float, processes: int = 1,
                   adaptation: Adaptation | None = None, cost: Cost | None = None,
                   precision_reason: str | None = None) -> RunRecord:
    """The record of a complete run (status "pruned" where a fit was stopped early: Fit.stopped). loaded: what the
    model load revealed (attn_implementation, parameters, last_layer, and provenance.model_provenance: revisions,
    package, weights fingerprint); processes: how many trained it together (data-parallel or sharded)."""
    import resource

    from harness.record import predictions, protocols
    from harness.record.provenance import device_name, harness_git, package_versions, resolved_settings, task_definition
    from harness.record.variants import variant_of

    train_real = sum(f.train_tokens_real for f in fits)
    train_proc = sum(f.train_tokens_processed for f in fits)
    if device.type == "cuda":
        import torch

        peak = PeakMemory(bytes=int(torch.cuda.max_memory_allocated(device)), kind="cuda max allocated")
    else:
        peak = PeakMemory(bytes=int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
                          kind="process peak RSS")
    dataset_sizes = {k: len(v) for k, v in data.splits.items()}
    if data.carved is not None:
        dataset_sizes["carved_validation"] = int(len(data.carved["validation"]))
    stopped = next((f.stopped for f in fits if f.stopped), None)  # a search's pruner stopped a fit early
    return RunRecord(
        schema_version=SCHEMA_VERSION, status="pruned" if stopped else "complete", created_at=_now(),
        failure=stopped,
        task=TaskInfo(name=task.name, display_name=task.display_name, hub_id=task.hub_id,
                      revision_requested=task.revision, revision_resolved=data.revision,
                      source=portable_path(data.source), definition=task_definition(task, data.max_length),
                      type=task.type),
        model=ModelInfo(name=model_spec.name, display_name=model_spec.display_name, family=model_spec.family,
                        source=portable_path(model_spec.source), location=portable_path(location), **loaded),
        variant=variant_of(cfg, limit), seed=seed, hyperparameters=dataclasses.asdict(cfg),
        overrides=cfg.overrides(), limit=limit, dataset_sizes=dataset_sizes,
        test_labels=predictions.encode_predictions(data.splits["test"].labels, task.type), fits=fits,
        protocols=protocols.protocols(fits, task.main),
        timings=Timings(load_s=load_s, tokenize_s=data.timings["tokenize_s"], train_s=sum(f.train_s for f in fits),
                        eval_s=sum(f.eval_s for f in fits), total_s=total_s),
        tokens=Tokens(train_real=train_real, train_processed=train_proc,
                      eval_real=sum(f.eval_tokens_real for f in fits),
                      eval_processed=sum(f.eval_tokens_processed for f in fits),
                      padding_efficiency=train_real / train_proc if train_proc else None),
        peak_memory=peak, device=(f"{processes} x " if processes > 1 else "") + device_name(device),
        packages=package_versions(), harness=HarnessInfo(**harness_git()),
        data_cache=DataCache(fingerprint=data.fingerprint, hit=data.cache_hit), precision=precision,
        precision_reason=precision_reason, device_type=device.type, subset=subset_info(limit),
        settings=resolved_settings(cfg, device=device, precision=precision, processes=processes,
                                   attn_implementation=loaded.get("attn_implementation")),
        adaptation=adaptation, cost=cost)


def failure_record(task, model, cfg, seed: int, limit: int | None, reason: str) -> RunRecord:
    """The record of a run that could not give an honest number; the table skips and reports it."""
    from harness.record.provenance import harness_git, package_distribution, package_versions, task_definition
    from harness.record.variants import variant_of

    package, version = package_distribution(model.package) if model.package else (None, None)
    return RunRecord(
        schema_version=SCHEMA_VERSION, status="failed", created_at=_now(),
        task=TaskInfo(name=task.name, display_name=task.display_name, hub_id=task.hub_id,
                      revision_requested=task.revision, definition=task_definition(task, None), type=task.type),
        model=ModelInfo(name=model.name, display_name=model.display_name, family=model.family,
                        source=portable_path(model.source),
                        revision_requested=model.revision, package=package, package_version=version),
        variant=variant_of(cfg, limit), seed=seed, hyperparameters=dataclasses.asdict(cfg),
        overrides=cfg.overrides(), limit=limit, dataset_sizes={}, test_labels="", fits=[],
        protocols={"published": None, "clean": None}, timings=None, tokens=None, peak_memory=None, device="",
        packages=package_versions(), harness=HarnessInfo(**harness_git()), data_cache=None, failure=reason,
        subset=subset_info(limit))


def subset_info(limit: int | None) -> SubsetInfo | None:
    from harness.data.splits import LIMIT_METHOD, LIMIT_SEED

    return None if limit is None else SubsetInfo(examples_per_split=limit, seed=LIMIT_SEED, method=LIMIT_METHOD)

