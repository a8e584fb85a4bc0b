"""Results as a pandas DataFrame: one row per record x protocol x metric (the public face: harness/results.py).

`value` is the metric as the record holds it (accuracy, macro-F1, ... and correlations as fractions,
MSE in squared label units); the table shows the percent metrics in %. `trivial_baseline` is the
metric's score for a predictor that never reads the text, on the record's own test labels
(metrics.trivial_baseline), for normalized scores. Every row carries the record's provenance (columns PROVENANCE), so a
DataFrame says where each number came from, and `harness table` refuses to pool records that
differ in it (harness/aggregate/pooling.py).
"""
from __future__ import annotations

import shlex
import warnings
from pathlib import Path

from harness.errors import UserError
from harness.record.predictions import decode_predictions
from harness.record.provenance import definition_fingerprint

# The columns that say which number it is ...
KEYS = ["variant", "task", "model", "seed", "protocol", "metric"]
# ... its value and how it was picked ...
VALUES = ["value", "fit", "epoch", "picked_by", "test_examples", "main", "trivial_baseline"]
# ... and where it came from.
PROVENANCE = ["task_display", "model_display", "family", "status", "schema_version", "migrated_from", "created_at",
              "task_hub_id", "task_revision_requested", "data_fingerprint", "task_source",
              "task_definition_fingerprint", "model_source", "model_revision_requested", "model_revision_resolved",
              "model_package", "model_package_version", "model_fingerprint", "precision", "device_type", "device",
              "limit", "subset_seed", "subset_method", "harness_version", "harness_git_commit", "harness_git_dirty",
              "tokenization_fingerprint", "command_line", "adaptation", "trainable_parameters", "energy_kwh",
              "emissions_kg", "emissions_country", "path"]
# ... and what its marks test: the predictions it was computed from (aggregate/marks.py).
PREDICTIONS = ["task_type", "test_predictions", "test_labels"]
COLUMNS = KEYS + VALUES + PROVENANCE + PREDICTIONS


def protocol_metrics(result) -> dict[str, float]:
    """The metrics of one protocol's result, by name (the one place that knows ProtocolResult's fields)."""
    return dict(result.test)


def trivial_baselines(record, gold) -> dict[str, float]:
    """metric -> its trivial baseline on the record's test labels (gold, decoded), for every metric its
    protocol results hold (computed once per record)."""
    from harness import metrics

    if not len(gold):
        return {}
    names = {m for result in record.protocols.values() if result is not None for m in result.test}
    labels = (record.task.definition or {}).get("label") or {}
    k = len(labels.get("names") or []) or None
    return {m: metrics.trivial_baseline(m, gold, k) for m in names if m in metrics.METRICS}


def provenance_of(record, path=None) -> dict:
    """The provenance columns of one record."""
    t, m = record.task, record.model
    return {
        "task_display": t.display_name, "model_display": m.display_name, "family": m.family,
        "status": record.status, "schema_version": record.schema_version, "migrated_from": record.migrated_from,
        "created_at": record.created_at, "task_hub_id": t.hub_id, "task_revision_requested": t.revision_requested,
        "data_fingerprint": t.revision_resolved, "task_source": t.source,
        "task_definition_fingerprint": definition_fingerprint(t.definition), "model_source": m.source,
        "model_revision_requested": m.revision_requested, "model_revision_resolved": m.revision_resolved,
        "model_package": m.package, "model_package_version": m.package_version,
        "model_fingerprint": m.weights_fingerprint, "precision": record.precision,
        "device_type": record.device_type, "device": record.device, "limit": record.limit,
        "subset_seed": record.subset.seed if record.subset else None,
        "subset_method": record.subset.method if record.subset else None,
        "harness_version": record.harness.version, "harness_git_commit": record.harness.git_commit,
        "harness_git_dirty": record.harness.git_dirty,
        "tokenization_fingerprint": record.data_cache.fingerprint if record.data_cache else None,
        "command_line": shlex.join(record.command_line) if record.command_line else None,
        # What was trained and what it cost (None: a record from before these fields).
        "adaptation": record.adaptation.method if record.adaptation else None,
        "trainable_parameters": record.adaptation.trainable_parameters if record.adaptation else None,
        "energy_kwh": record.cost.energy_kwh if record.cost else None,
        "emissions_kg": record.cost.emissions_kg if record.cost else None,
        "emissions_country": record.cost.country if record.cost else None,
        "path": None if path is None else str(path),
    }


def record_rows(record, path=None) -> list[dict]:
    """One dict per protocol x metric of a complete record (a failed record has none)."""
    if record.status != "complete":
        return []
    prov = provenance_of(record, path)
    rows = []
    gold = decode_predictions(record.test_labels, record.task.type)
    baselines, examples = trivial_baselines(record, gold), len(gold)
    for protocol, result in record.protocols.items():
        if result is None:
            continue
        for metric, value in protocol_metrics(result).items():
            rows.append({"variant": record.variant, "task": record.task.name, "model": record.model.name,
                         "seed": record.seed, "protocol": protocol, "metric": metric, "value": value,
                         "fit": result.fit, "epoch": result.epoch, "picked_by": result.picked_by,
                         "test_examples": examples, "main": result.main,
                         "trivial_baseline": baselines.get(metric), **prov, "task_type": record.task.type,
                         "test_predictions": record.fits[result.fit].epochs[result.epoch - 1].test_predictions,
                         "test_labels": record.test_labels})
    return rows


def frame(records, paths=None):
    """A DataFrame from RunRecords (paths: where each was read, for the `path` column)."""
    import pandas as pd

    paths = paths if paths is not None else [None] * len(records)
    rows = [row for r, p in zip(records, paths, strict=True) for row in record_rows(r, p)]
    return pd.DataFrame(rows, columns=COLUMNS)


def read(path) -> tuple[list, list, list[str]]:
    """(records, their paths, warnings) from a results folder or one record file."""
    from harness.record.store import read_record, record_files

    path = Path(path)
    if not path.exists():
        raise UserError(f"no results at '{path}': run `harness run` first or give a results folder")
    files = [path] if path.is_file() else record_files(path)
    records, paths, problems = [], [], []
    for f in files:
        try:
            records.append(read_record(f))
            paths.append(f)
        except (OSError, ValueError) as exc:
            problems.append(f"skipped {f}: {exc}")
    return records, paths, problems


def load(path):
    """A results folder (or one record file) as a DataFrame: one row per record x protocol x metric, with
    the provenance columns. Files that are not records (foreign, truncated, newer schema) are skipped with
    one warning each, naming the file; version 1 records are migrated (their missing provenance is unknown)."""
    records, paths, problems = read(path)
    for p in problems:
        warnings.warn(p, stacklevel=2)
    return frame(records, paths)


def scores_of(df, protocol: str, metric: str = "accuracy", scoring: dict | None = None) -> list:
    """Per-seed scores of one protocol, for harness/aggregate/table.py: of `metric` in every task, or per task as
    scoring (task -> table.ColumnScore) says; in table units (% for the percent metrics, or normalized)."""
    from harness.aggregate.groups import group_label
    from harness.aggregate.table import ColumnScore, SeedScore
    from harness.redact import shared_source

    rows = df[df.protocol == protocol]
    wanted = rows.task.map(lambda t: (scoring or {}).get(t, ColumnScore(metric)).metric)
    rows = rows[rows.metric == wanted]
    labels = {key: group_label(key[1], set(g.device_type))  # never pooled across precisions (selection.py)
              for key, g in rows.groupby(["variant", rows.precision.fillna("")], sort=False)}

    def shown(r) -> float:
        base = r.trivial_baseline if r.trivial_baseline == r.trivial_baseline else None  # NaN: none
        return (scoring or {}).get(r.task, ColumnScore(metric)).shown(float(r.value), base)

    return [SeedScore(r.variant, r.model, r.model_display, r.task, int(r.seed), shown(r),
                      labels[(r.variant, r.precision if isinstance(r.precision, str) else "")],
                      shared_source(_text(r.model_source), _text(r.model_fingerprint)), raw=float(r.value),
                      task_type=r.task_type, predictions=r.test_predictions or "", gold=r.test_labels or "")
            for r in rows.itertuples(index=False)]


def _text(value) -> str | None:
    """A DataFrame cell as text; None where it is missing (NaN)."""
    return value if isinstance(value, str) else None


def variants_of(df) -> list[str]:
    """The variants in df, "default" first (the order `harness table` shows them in)."""
    return sorted(set(df.variant), key=lambda v: (v != "default", v))
