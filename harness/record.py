"""The run record: one JSON file per (task, model, variant, seed). The only schema, field by field.

A run that fails (divergence, out of memory at micro-batch 1) writes a record with status "failed"
and the reason; `harness table` skips and reports those. Where records live and how they are
written and found: harness/store.py.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field

SCHEMA_VERSION = 2  # 2: metrics as a mapping (issue 13); version 1 records are read through upgrade_metrics


@dataclass
class SplitMetrics:
    metrics: dict[str, float]  # the task's metrics (harness/metrics.py): accuracy, macro_f1, ... or pearson, ...
    loss: float  # mean cross-entropy (classification) or mean squared error of the raw outputs (regression)


@dataclass
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch
    test: SplitMetrics
    validation: SplitMetrics | None = None  # None where the fit has no validation split
    # Per test example, in test order (scores.encode_predictions): classification, one character per predicted
    # class id; regression, the predicted scores to 5 significant digits, space-separated (the metrics above
    # were computed on exactly these values, so they can be recomputed from the record).
    test_predictions: str = ""


@dataclass
class Fit:
    """One training run of the model. Tasks with a validation split need one fit for both protocols;
    tasks without one get a fit on full train (published) and one on train minus a carved validation (clean)."""
    train_set: str  # "train" (the whole split) or "train-minus-carved"
    validation_source: str | None  # "split", "carved" or None
    train_examples: int
    validation_examples: int
    epochs: list[EpochMetrics]
    train_s: float  # wall time in the training steps
    eval_s: float  # wall time evaluating validation and test
    train_tokens_real: int  # non-pad tokens fed to training steps
    train_tokens_processed: int  # tokens incl. padding
    eval_tokens_real: int
    eval_tokens_processed: int
    steps: int  # optimizer steps
    oom_retries: list[dict] = field(default_factory=list)  # {"step", "micro_batch"} each time the batch was split


@dataclass
class ProtocolResult:
    fit: int  # index into fits
    epoch: int  # the chosen epoch (1-based)
    picked_by: str  # "test <main metric>" (published) or "validation <main metric>" (clean)
    main: str  # the task's main metric, which picked the epoch
    test: dict[str, float]  # every test metric at the chosen epoch

    @property
    def main_score(self) -> float:
        return self.test[self.main]


@dataclass
class TaskInfo:
    name: str
    display_name: str
    hub_id: str
    revision_requested: str | None = None  # the registry's revision (None: the default branch)
    revision_resolved: str | None = None  # the hub commit, or "sha256:..." of a mirror folder's files
    source: str | None = None  # "hub" or the mirror folder
    type: str = "classification"  # or "regression": how test_labels and test_predictions are written


@dataclass
class ModelInfo:
    name: str
    display_name: str
    family: str  # "decoder" or "encoder"
    source: str  # hub id, folder or package:<name>
    location: str | None = None  # what was loaded: hub id or folder
    revision_resolved: str | None = None
    attn_implementation: str | None = None
    parameters: int | None = None
    last_layer: str | None = None  # "pooled": the exact shortcut of pooled_layer.py ran; "full": it did not


@dataclass
class Timings:
    load_s: float  # data, tokenizer, config and model loading
    tokenize_s: float
    train_s: float
    eval_s: float
    total_s: float


@dataclass
class Tokens:
    train_real: int
    train_processed: int
    eval_real: int
    eval_processed: int
    padding_efficiency: float | None  # train_real / train_processed


@dataclass
class PeakMemory:
    bytes: int
    kind: str  # "cuda max allocated" or "process peak RSS"


@dataclass
class HarnessInfo:
    version: str
    git_commit: str | None  # None outside a git checkout
    git_dirty: bool | None


@dataclass
class DataCache:
    fingerprint: str  # the tokenization cache key (texts, tokenizer, max_length)
    hit: bool


@dataclass
class RunRecord:
    schema_version: int
    status: str  # "complete" or "failed"
    created_at: str  # ISO 8601, UTC
    task: TaskInfo
    model: ModelInfo
    variant: str  # "default" or the slug of overrides / limit (store.variant_of)
    seed: int
    hyperparameters: dict  # the full run config
    overrides: dict  # the fields that differ from the registered recipe
    limit: int | None  # --limit: examples per split, stratified; None = full data
    dataset_sizes: dict  # role -> examples, as loaded (after --limit)
    test_labels: str  # gold label per test example, same encoding as test_predictions
    fits: list[Fit]
    protocols: dict[str, ProtocolResult | None]  # "published" / "clean"
    timings: Timings | None  # None for failed runs
    tokens: Tokens | None
    peak_memory: PeakMemory | None
    device: str  # GPU name, or "cpu: <model name> (<n> threads)"
    packages: dict  # name -> version
    harness: HarnessInfo
    data_cache: DataCache | None
    failure: str | None = None  # the reason, for status "failed"
    precision: str | None = None  # as resolved on the device: "fp32" or "bf16" (autocast); None in older records
    device_type: str | None = None  # "cpu" or "cuda"; None in older records


# ------------------------------------------------------------------ (de)serialisation

def to_json(record: RunRecord) -> str:
    return json.dumps(dataclasses.asdict(record), indent=1, ensure_ascii=False, sort_keys=False)


def _build(cls, data, where: str):
    """Dict -> dataclass, checking required fields and nested types; raises ValueError naming the field."""
    hints = typing.get_type_hints(cls)
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{where}: missing field '{f.name}'")
            continue
        kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _convert(tp, value, where: str):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        # Failed runs of the first schema wrote {} where a section had nothing to say.
        if value is None or (value == {} and dataclasses.is_dataclass(inner[0])):
            if type(None) in args:
                return None
        return _convert(inner[0], value, where)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()} if args else value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    base = origin or tp
    if base in (int, str, bool, dict) and not isinstance(value, base):
        raise ValueError(f"{where}: expected {base.__name__}")
    return value


def upgrade_metrics(data: dict) -> dict:
    """A version 1 record's metrics in the version 2 form (a copy; the input is left alone): each split's
    accuracy / macro_f1 fields become its `metrics` mapping, and each protocol result names its main
    metric (accuracy: version 1 picked epochs by it) and carries its test metrics as a mapping."""
    import copy

    data = copy.deepcopy(data)

    def split(m):
        if not isinstance(m, dict) or "metrics" in m:
            return m
        return {"metrics": {k: m[k] for k in ("accuracy", "macro_f1") if k in m}, "loss": m.get("loss")}

    for fit in data.get("fits") or []:
        for epoch in (fit.get("epochs") if isinstance(fit, dict) else None) or []:
            if isinstance(epoch, dict):
                for key in ("test", "validation"):
                    if epoch.get(key) is not None:
                        epoch[key] = split(epoch[key])
    for name, result in (data.get("protocols") or {}).items():
        if isinstance(result, dict) and "test" not in result:
            data["protocols"][name] = {
                "fit": result.get("fit"), "epoch": result.get("epoch"), "picked_by": result.get("picked_by"),
                "main": "accuracy", "test": {"accuracy": result.get("test_accuracy"),
                                             "macro_f1": result.get("test_macro_f1")}}
    return data


def from_dict(data) -> RunRecord:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = data.get("schema_version")
    if version == 1:
        data = {**upgrade_metrics(data), "schema_version": SCHEMA_VERSION}
    elif version != SCHEMA_VERSION:
        raise ValueError(f"schema_version {version!r} is not {SCHEMA_VERSION} (written by another harness version; "
                         f"rerun the cell)")
    return _build(RunRecord, data, "record")


# ------------------------------------------------------------------ building records

def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def success_record(*, task, model_spec, cfg, seed: int, limit: int | None, data, fits: list[Fit], location: str,
                   loaded: dict, device, precision: str, load_s: float, total_s: float) -> RunRecord:
    """The record of a complete run. loaded: what the model load revealed (revision_resolved,
    attn_implementation, parameters, last_layer)."""
    import resource

    from . import scores
    from .provenance import device_name, harness_git, package_versions
    from .store import variant_of

    train_real = sum(f.train_tokens_real for f in fits)
    train_proc = sum(f.train_tokens_processed for f in fits)
    if device.type == "cuda":
        import torch

        peak = PeakMemory(bytes=int(torch.cuda.max_memory_allocated(device)), kind="cuda max allocated")
    else:
        peak = PeakMemory(bytes=int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
                          kind="process peak RSS")
    world = _world()
    dataset_sizes = {k: len(v) for k, v in data.splits.items()}
    if data.carved is not None:
        dataset_sizes["carved_validation"] = int(len(data.carved["validation"]))
    return RunRecord(
        schema_version=SCHEMA_VERSION, status="complete", created_at=_now(),
        task=TaskInfo(name=task.name, display_name=task.display_name, hub_id=task.hub_id,
                      revision_requested=task.revision, revision_resolved=data.revision, source=data.source,
                      type=task.type),
        model=ModelInfo(name=model_spec.name, display_name=model_spec.display_name, family=model_spec.family,
                        source=model_spec.source, location=location, **loaded),
        variant=variant_of(cfg, limit), seed=seed, hyperparameters=dataclasses.asdict(cfg),
        overrides=cfg.overrides(), limit=limit, dataset_sizes=dataset_sizes,
        test_labels=scores.encode_predictions(data.splits["test"].labels, task.type), fits=fits,
        protocols=scores.protocols(fits, task.main),
        timings=Timings(load_s=load_s, tokenize_s=data.timings["tokenize_s"], train_s=sum(f.train_s for f in fits),
                        eval_s=sum(f.eval_s for f in fits), total_s=total_s),
        tokens=Tokens(train_real=train_real, train_processed=train_proc,
                      eval_real=sum(f.eval_tokens_real for f in fits),
                      eval_processed=sum(f.eval_tokens_processed for f in fits),
                      padding_efficiency=train_real / train_proc if train_proc else None),
        peak_memory=peak, device=(f"{world} x " if world > 1 else "") + device_name(device),
        packages=package_versions(), harness=HarnessInfo(**harness_git()),
        data_cache=DataCache(fingerprint=data.fingerprint, hit=data.cache_hit), precision=precision,
        device_type=device.type)


def failure_record(task, model, cfg, seed: int, limit: int | None, reason: str) -> RunRecord:
    """The record of a run that could not give an honest number; the table skips and reports it."""
    from .provenance import harness_git, package_versions
    from .store import variant_of

    return RunRecord(
        schema_version=SCHEMA_VERSION, status="failed", created_at=_now(),
        task=TaskInfo(name=task.name, display_name=task.display_name, hub_id=task.hub_id, type=task.type),
        model=ModelInfo(name=model.name, display_name=model.display_name, family=model.family, source=model.source),
        variant=variant_of(cfg, limit), seed=seed, hyperparameters=dataclasses.asdict(cfg),
        overrides=cfg.overrides(), limit=limit, dataset_sizes={}, test_labels="", fits=[],
        protocols={"published": None, "clean": None}, timings=None, tokens=None, peak_memory=None, device="",
        packages=package_versions(), harness=HarnessInfo(**harness_git()), data_cache=None, failure=reason)


def _world() -> int:
    from .distributed import world_size

    return world_size()
