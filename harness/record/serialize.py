"""A run record to and from JSON: writing masks secrets; reading checks every field's type and migrates older
schema versions in memory (the file is left as it is). The schema and its versions: harness/record/schema.py."""
from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing

from harness.record.schema import SCHEMA_VERSION, STATUSES, UNKNOWN, NewerSchema, RunRecord


def to_json(record: RunRecord) -> str:
    """The record's JSON, with every secret masked (redact.py): nothing the environment knows leaks into it."""
    from harness.redact import scrub

    return json.dumps(scrub(dataclasses.asdict(record)), indent=1, ensure_ascii=False, sort_keys=False)


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
    """A version 2 record (or a version 1 record already through migrate_v1) in the version 3 form (a copy; the
    input is left alone): each split's accuracy / macro_f1 fields become its `metrics` mapping, each protocol
    result names its main metric (accuracy: versions 1 and 2 picked epochs by it) and carries its test metrics
    as a mapping, and the task definition names that main metric. migrated_from keeps the file's version."""
    data = copy.deepcopy(data)
    data["migrated_from"] = data.get("migrated_from") or data.get("schema_version")
    data["schema_version"] = SCHEMA_VERSION

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
    task = data.get("task")
    if isinstance(task, dict) and isinstance(task.get("definition"), dict):
        task["definition"].setdefault("main", "accuracy")
    return data


def from_dict(data) -> RunRecord:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = data.get("schema_version")
    if version == 1:
        data = upgrade_metrics(migrate_v1(data))
    elif version == 2:
        data = upgrade_metrics(data)
    elif isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise NewerSchema(f"schema_version {version} is newer than this harness reads ({SCHEMA_VERSION}): "
                          f"upgrade poeta-harness to read it")
    elif version != SCHEMA_VERSION:
        raise ValueError(f"schema_version {version!r} is not one this harness reads (1 to {SCHEMA_VERSION}); "
                         f"rerun the cell")
    record = _build(RunRecord, data, "record")
    if record.status not in STATUSES:
        raise ValueError(f"record.status: {record.status!r} is not one of {', '.join(STATUSES)}")
    return record


def build_dataclass(cls, data, where: str):
    """Dict -> dataclass `cls`, every field's type checked (ValueError naming the field): for other JSON files
    the harness writes (the search record, harness/record/search.py)."""
    return _build(cls, data, where)


def migrate_v1(data: dict) -> dict:
    """A version 1 record as a version 2 dict (a copy; the input is not changed; upgrade_metrics then makes it
    version 3). Version 1 has everything but the provenance fields: those are marked unknown, and
    migrated_from = 1 says the record was migrated."""
    out = copy.deepcopy(data)
    out["schema_version"] = 2
    out["migrated_from"] = 1
    model = out.get("model")
    if isinstance(model, dict):
        for key in ("revision_requested", "weights_fingerprint"):
            model.setdefault(key, UNKNOWN)
        if str(model.get("source", "")).startswith("package:"):  # v1 names the module, not the distribution
            model.setdefault("package", UNKNOWN)
            model.setdefault("package_version", UNKNOWN)
    if isinstance(out.get("limit"), int):
        out.setdefault("subset", {"examples_per_split": out["limit"], "seed": None, "method": UNKNOWN})
    # Left absent, so None (unknown): task.definition, command_line, settings; precision and device_type
    # where a v1 record predates them.
    return out
