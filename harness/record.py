"""The run record: one JSON file per (task, model, variant, seed). The only schema, field by field.

Layout:  <results>/<task>/<model>/<variant>/seed<k>.json
  variant is "default" for the registered recipe on full data, else a slug of what changed
  (e.g. "limit200" or "epochs=1_limit200"), so a smoke run never overwrites a real one.
A run that fails (divergence, out of memory at micro-batch 1) writes seed<k>.failed.json with
status "failed" and the reason; `harness table` skips and reports those.
Files are written atomically (temp file in the same folder + rename): a reader, or a run killed
at any moment, never leaves a half-written record.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError

SCHEMA_VERSION = 1


@dataclass
class SplitMetrics:
    accuracy: float  # fraction in [0, 1]
    macro_f1: float  # unweighted mean of per-class F1, in [0, 1]
    loss: float  # mean cross-entropy


@dataclass
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch
    test: SplitMetrics
    validation: SplitMetrics | None = None  # None where the fit has no validation split
    test_predictions: str = ""  # predicted class id per test example, one digit (or char) each, in test order


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
    picked_by: str  # "test accuracy" (published) or "validation accuracy" (clean)
    test_accuracy: float
    test_macro_f1: float


@dataclass
class RunRecord:
    schema_version: int
    status: str  # "complete" or "failed"
    created_at: str  # ISO 8601, UTC
    task: dict  # name, display_name, hub_id, revision_requested, revision_resolved, source
    model: dict  # name, display_name, family, source, revision_resolved, attn_implementation, parameters,
    #   last_layer ("pooled": the exact shortcut of pooled_layer.py ran; "full": it did not)
    variant: str  # "default" or the slug of overrides / limit
    seed: int
    hyperparameters: dict  # the full run config
    overrides: dict  # the fields that differ from the registered recipe
    limit: int | None  # --limit: examples per split, stratified; None = full data
    dataset_sizes: dict  # role -> examples, as loaded (after --limit)
    test_labels: str  # gold class id per test example, same encoding as test_predictions
    fits: list[Fit]
    protocols: dict  # "published" / "clean" -> ProtocolResult or None
    timings: dict  # load_s, tokenize_s, train_s, eval_s, total_s
    tokens: dict  # train_real, train_processed, eval_real, eval_processed, padding_efficiency (train)
    peak_memory: dict  # {"bytes", "kind"}: CUDA max allocated, or the process's peak RSS on CPU
    device: str
    packages: dict  # name -> version
    harness: dict  # version, git_commit, git_dirty
    data_cache: dict  # fingerprint, hit
    failure: str | None = None  # the reason, for status "failed"
    adaptation: dict = field(default_factory=dict)  # what was trained (harness/adapters.py): method ("full", "lora",
    #   "qlora"), settings (LoRA: r, alpha, dropout, targets, trained_in_full = the head's modules, quantization),
    #   trainable_parameters, total_parameters (as trained, adapters included), base_parameters (as loaded),
    #   gradient_checkpointing, sharding
    cost: dict = field(default_factory=dict)  # energy and emissions (harness/cost.py): energy_kwh, emissions_kg
    #   (kg CO2eq), country, tracker (None with `unavailable` saying why), cpu/gpu/ram_energy_kwh, duration_s;
    #   with peak_memory and adaptation's trainable_parameters, `harness table --cost` shows them


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
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, where)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list")
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    base = origin or tp
    if base in (int, str, dict, bool) and not isinstance(value, base):
        raise ValueError(f"{where}: expected {base.__name__}")
    return value


def from_dict(data) -> RunRecord:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"schema_version {version!r} is not {SCHEMA_VERSION} (written by another harness version; "
                         f"rerun the cell)")
    record = _build(RunRecord, data, "record")
    record.protocols = {k: (None if v is None else _build(ProtocolResult, v, f"record.protocols.{k}"))
                        for k, v in record.protocols.items()}
    return record


def read_record(path: Path) -> RunRecord:
    with open(path, encoding="utf-8") as fh:
        return from_dict(json.load(fh))


# ------------------------------------------------------------------ layout

def variant_name(overrides: dict, limit: int | None) -> str:
    parts = [f"{k}={_short(v)}" for k, v in sorted(overrides.items())]
    if limit is not None:
        parts.append(f"limit{limit}")
    if not parts:
        return "default"
    slug = re.sub(r"[^A-Za-z0-9.=_-]+", "-", "_".join(parts))
    if len(slug) > 80:
        import hashlib

        slug = slug[:60] + "-" + hashlib.sha256(slug.encode()).hexdigest()[:8]
    return slug


def _short(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def record_path(results: Path, task: str, model: str, variant: str, seed: int, failed: bool = False) -> Path:
    return Path(results) / task / model / variant / (f"seed{seed}.failed.json" if failed else f"seed{seed}.json")


def check_writable(results: Path) -> None:
    """Fail before any work if the results folder can't take a record (a file there, no permission)."""
    results = Path(results)
    probe = results
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"results path '{probe}' is a file, not a folder: pass --results DIR")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"results folder '{probe}' is not writable: pass --results DIR")


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(results: Path, record: RunRecord) -> Path:
    path = record_path(results, record.task["name"], record.model["name"], record.variant, record.seed,
                       failed=record.status != "complete")
    write_atomic(path, to_json(record) + "\n")
    if record.status == "complete":  # a success supersedes an earlier failure of the same cell
        record_path(results, record.task["name"], record.model["name"], record.variant, record.seed,
                    failed=True).unlink(missing_ok=True)
    return path


def scan(results: Path) -> tuple[list[RunRecord], list[str]]:
    """Every record under results/, and a warning per file that is not a valid record."""
    records, warnings = [], []
    for path in sorted(Path(results).glob("*/*/*/seed*.json")):
        try:
            records.append(read_record(path))
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            warnings.append(f"skipped {path}: {exc}")
    return records, warnings


def failure_record(task, model, cfg, seed: int, limit: int | None, reason: str) -> RunRecord:
    """The record of a run that could not give an honest number; the table skips and reports it."""
    from datetime import datetime, timezone

    from .provenance import harness_git, package_versions

    return RunRecord(
        schema_version=SCHEMA_VERSION, status="failed",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        task={"name": task.name, "display_name": task.display_name, "hub_id": task.hub_id},
        model={"name": model.name, "display_name": model.display_name, "family": model.family,
               "source": model.source},
        variant=variant_name(cfg.recipe_overrides(), limit), seed=seed, hyperparameters=dataclasses.asdict(cfg),
        overrides=cfg.overrides(), limit=limit, dataset_sizes={}, test_labels="", fits=[],
        protocols={"published": None, "clean": None}, timings={}, tokens={}, peak_memory={}, device="",
        packages=package_versions(), harness=harness_git(), data_cache={}, failure=reason)
