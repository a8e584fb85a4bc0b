"""Splits: load a task's splits (hub or local mirror) as plain columns, check them, encode the
labels (class ids; floats in the declared range for regression), and take seeded, stratified subsets."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import embedded
from harness.errors import UserError, short
from harness.files import hash_file, visible_files
from harness.hub import mirror_lock, reachability
from harness.hub.mirror import MIRROR_ENV, mirror_entry, mirror_root
from harness.registry.specs import SPLIT_ROLES, TaskSpec


@dataclass
class RawSplit:
    """One split as plain Python: the columns the task uses, labels already class ids."""
    columns: dict[str, list]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: np.ndarray) -> "RawSplit":
        return RawSplit({k: [v[i] for i in idx] for k, v in self.columns.items()}, self.labels[idx])


@dataclass
class EncodedSplit:
    """Token ids of one split, stored flat with offsets (compact, cheap to cache)."""
    ids: np.ndarray  # int32, all examples concatenated
    offsets: np.ndarray  # int64, len = n + 1
    labels: np.ndarray  # int64 class ids, or float64 regression targets
    type_ids: np.ndarray | None = None  # int8, same layout as ids (encoder sentence pairs)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, idx: np.ndarray) -> "EncodedSplit":
        lengths = self.lengths[idx]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.concatenate([self.ids[self.offsets[i]:self.offsets[i + 1]] for i in idx]) if len(idx) else self.ids[:0]
        types = None
        if self.type_ids is not None:
            types = np.concatenate([self.type_ids[self.offsets[i]:self.offsets[i + 1]] for i in idx]) if len(idx) \
                else self.type_ids[:0]
        return EncodedSplit(ids, offsets, self.labels[idx], types)


# ---------------------------------------------------------------- loading

def load_raw(task: TaskSpec, mirror: str | None = None) -> tuple[dict[str, RawSplit], str, str | None]:
    """Returns role -> RawSplit, the source ("hub", the mirror folder or "embedded") and the resolved revision
    (the locked commit for a mirror with a lock, else a content hash of the folder)."""
    import logging

    import datasets

    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity(logging.CRITICAL)  # failures become one UserError line below
    folder = mirror_entry(mirror, task.hub_id, f"task {task.name}")
    root = mirror_root(mirror) if folder is not None else None
    if folder is None and embedded.folder_for(task.hub_id, task.config) and not reachability.hub_available():
        folder, root = embedded.folder_for(task.hub_id, task.config), embedded.ROOT  # the package's copy: last resort
    try:
        if folder is not None:
            locked = mirror_lock.verify(root, task.hub_id)  # a changed mirror file stops here
            data_dir = task.config if task.config and (folder / task.config).is_dir() else None
            ds = datasets.load_dataset(str(folder), data_dir=data_dir)
            source = "embedded" if embedded.holds(folder) else str(folder)
            revision = (locked and locked.commit) or _folder_revision(folder)
        else:
            ds = datasets.load_dataset(task.hub_id, task.config, revision=task.revision)
            source, revision = "hub", _hub_revision(task)
    except UserError:
        raise
    except Exception as exc:  # datasets raises many types for "offline" / "not found" / unreadable files
        reason = _root_cause(exc)
        if folder is not None:
            raise UserError(f"task {task.name}: cannot read the dataset in mirror folder {folder}: {reason}") from None
        raise UserError(f"task {task.name}: cannot load the dataset from the hub ('{task.hub_id}'): {reason}. "
                        f"Offline? Use --mirror DIR (or ${MIRROR_ENV}) with the dataset at "
                        f"DIR/{task.hub_id}/") from None

    out = {}
    for role in SPLIT_ROLES:  # a fixed order, whatever the task file's
        split = task.splits.get(role)
        if split is None:
            continue
        if split not in ds:
            raise UserError(f"task {task.name}: split '{split}' not in the dataset (splits: {', '.join(ds)})")
        out[role] = _to_raw(task, ds[split], split)
    return out, source, revision


def _root_cause(exc: BaseException) -> str:
    """The innermost error that explains exc. A context the library suppressed (`raise ... from None`) is
    not followed: datasets, offline, raises "Couldn't reach the Hub" over a context that says only
    "is not cached in None"."""
    while True:
        inner = exc.__cause__ if exc.__cause__ is not None else (
            None if exc.__suppress_context__ else exc.__context__)
        if inner is None:
            break
        exc = inner
    text = short(exc, fallback="")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _to_raw(task: TaskSpec, split_ds, split: str) -> RawSplit:
    missing = sorted(task.columns - set(split_ds.column_names))
    if missing:
        raise UserError(f"task {task.name}: column '{missing[0]}' not in split '{split}' "
                        f"(columns: {', '.join(split_ds.column_names)}); fix {task.source}")
    if len(split_ds) == 0:
        raise UserError(f"task {task.name}: split '{split}' is empty")
    text_cols = sorted(task.columns - {task.label.column})
    columns = {c: list(split_ds[c]) for c in text_cols}
    for c in text_cols:
        for v in columns[c]:
            if not isinstance(v, str):
                raise UserError(f"task {task.name}: column '{c}' in split '{split}' holds {type(v).__name__}, "
                                f"not text")
    labels = encode_labels(task, list(split_ds[task.label.column]), split)
    return RawSplit(columns, labels)


def encode_labels(task: TaskSpec, values: list, split: str) -> np.ndarray:
    """Raw label values -> class ids 0..k-1; a bool is 0/1; anything else needs label.map.
    Regression: numbers in label.range, as float64."""
    if task.type == "regression":
        return encode_targets(task, values, split)
    k, mapping = task.label.num_classes, task.label.mapping
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if mapping is not None and v in mapping:
            out[i] = mapping[v]
            continue
        if isinstance(v, (bool, np.bool_)):
            out[i] = int(v)
        elif isinstance(v, (int, np.integer)):
            out[i] = v
        else:
            raise UserError(f"task {task.name}: label column '{task.label.column}' in split '{split}' holds "
                            f"{type(v).__name__} {v!r}; expected class ids 0..{k - 1} (or add label.map)")
        if not 0 <= out[i] < k:
            raise UserError(f"task {task.name}: label {v!r} in split '{split}' is outside the declared classes "
                            f"0..{k - 1} ({', '.join(task.label.names)})")
    return out


LABEL_DIGITS = 6  # significant digits kept of a regression label: float32 storage noise (3.799999952) goes


def encode_targets(task: TaskSpec, values: list, split: str) -> np.ndarray:
    """Regression labels: numbers inside the declared range, rounded to LABEL_DIGITS significant digits so
    that the record's text form of them reads back as the very values the metrics were computed on."""
    low, high = task.label.range
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not np.isfinite(v):
            raise UserError(f"task {task.name}: label column '{task.label.column}' in split '{split}' holds "
                            f"{type(v).__name__} {v!r}; a regression task needs numbers in {low:g}..{high:g}")
        out[i] = float(f"{float(v):.{LABEL_DIGITS}g}")
        if not low <= out[i] <= high:
            raise UserError(f"task {task.name}: label {out[i]:g} in split '{split}' is outside the declared range "
                            f"{low:g}..{high:g}; fix label.range in {task.source} or the data")
    return out


def _folder_revision(folder: Path) -> str:
    """A content hash of the mirror's data files (names and sizes and mtimes would lie after a copy)."""
    h = hashlib.sha256()
    for rel in visible_files(folder):
        h.update(str(rel).encode())
        hash_file(h, folder / rel)
    return "sha256:" + h.hexdigest()[:16]


def _hub_revision(task: TaskSpec) -> str | None:
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(task.hub_id, revision=task.revision).sha
    except Exception:  # the data loaded, so only the provenance lookup failed: record what was asked
        return task.revision


# ---------------------------------------------------------------- subsets

STRATA = 10  # regression targets are stratified by deciles


def strata(labels: np.ndarray) -> np.ndarray:
    """What a subset is stratified on: the class ids, or the decile of a regression target."""
    if labels.dtype.kind != "f" or len(labels) == 0:
        return labels
    edges = np.quantile(labels, np.linspace(0, 1, STRATA + 1)[1:-1])
    return np.searchsorted(edges, labels, side="right")


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded permutation whose every prefix is (as nearly as possible) class-stratified."""
    labels = strata(labels)
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels), dtype=np.float64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rank = rng.permutation(len(idx))
        keys[idx] = (rank + rng.random()) / len(idx)  # spread each class evenly over [0, 1)
    return np.argsort(keys, kind="stable")


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    return np.sort(stratified_order(labels, seed)[:n])


def carve_validation(labels: np.ndarray, size: int, seed: int) -> dict[str, np.ndarray]:
    """Split train indices into a stratified validation part and the rest, with a fixed seed."""
    if size >= len(labels):
        raise UserError(f"validation_from_train.size ({size}) must be smaller than the train split ({len(labels)})")
    order = stratified_order(labels, seed)
    return {"validation": np.sort(order[:size]), "train": np.sort(order[size:])}


# The --limit subset belongs to the data, not to the run: one seed for every run, so all seeds of a
# smoke cell see the same examples. Both are written in the record (record.SubsetInfo).
LIMIT_SEED = 0
LIMIT_METHOD = "stratified: the first N of a seeded, class-stratified permutation of each split"


def apply_limit(raw: dict[str, RawSplit], limit: int | None, seed: int) -> dict[str, RawSplit]:
    if limit is None:
        return raw
    return {role: (s if len(s) <= limit else s.take(stratified_subset(s.labels, limit, seed)))
            for role, s in raw.items()}
