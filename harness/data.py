"""Data: load a task's splits (hub or local mirror), check them, format per model family,
tokenize once and cache the token ids on disk.

The cache key is a hash of exactly what tokenization consumes (the formatted texts, the
tokenizer's full definition and max_length), so the same task and tokenizer never tokenize
twice, and models that share a tokenizer share the cache.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .registry import TaskSpec

MIRROR_ENV = "HARNESS_MIRROR"
CACHE_ENV = "HARNESS_CACHE"


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
    labels: np.ndarray  # int64
    type_ids: np.ndarray | None = None  # int8, same layout as ids (encoder sentence pairs)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], (None if self.type_ids is None else self.type_ids[a:b])

    def subset(self, idx: np.ndarray) -> "EncodedSplit":
        lengths = self.lengths[idx]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.concatenate([self.ids[self.offsets[i]:self.offsets[i + 1]] for i in idx]) if len(idx) else self.ids[:0]
        types = None
        if self.type_ids is not None:
            types = np.concatenate([self.type_ids[self.offsets[i]:self.offsets[i + 1]] for i in idx]) if len(idx) \
                else self.type_ids[:0]
        return EncodedSplit(ids, offsets, self.labels[idx], types)


@dataclass
class TaskData:
    """Everything the routine needs from the data side, with its provenance."""
    splits: dict[str, EncodedSplit]  # "train", "test", and "validation" where the task has one
    carved: dict[str, np.ndarray] | None  # where validation is carved: train indices for "train" and "validation"
    source: str  # "hub" or the mirror folder
    revision: str | None
    fingerprint: str  # the tokenization cache key
    cache_hit: bool
    timings: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- loading

def mirror_root(mirror: str | None) -> Path | None:
    """The mirror given by --mirror or $HARNESS_MIRROR (checked), or None."""
    root = mirror or os.environ.get(MIRROR_ENV)
    if not root:
        return None
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"mirror folder '{root}' does not exist or is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise UserError(f"mirror folder '{root}' is not readable")
    return path


def mirror_folder(task: TaskSpec, mirror: str | None) -> Path | None:
    """DIR/<hub id>/ under the mirror, if it exists."""
    root = mirror_root(mirror)
    if root is None:
        return None
    folder = (root / task.hub_id).resolve()
    if root.resolve() not in folder.parents:  # hub ids are validated; this is belt and braces
        raise UserError(f"task {task.name}: hub id '{task.hub_id}' escapes the mirror folder")
    return folder if folder.is_dir() else None


def load_raw(task: TaskSpec, mirror: str | None = None) -> tuple[dict[str, RawSplit], str, str | None]:
    """Returns role -> RawSplit, the source ("hub" or folder) and the resolved revision."""
    import logging

    import datasets

    datasets.disable_progress_bars()
    datasets.utils.logging.set_verbosity(logging.CRITICAL)  # failures become one UserError line below
    folder = mirror_folder(task, mirror)
    try:
        if folder is not None:
            data_dir = task.config if task.config and (folder / task.config).is_dir() else None
            ds = datasets.load_dataset(str(folder), data_dir=data_dir)
            source, revision = str(folder), _folder_revision(folder)
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
                        f"Offline? Use --mirror DIR (or ${MIRROR_ENV}) with the dataset at DIR/{task.hub_id}/") from None

    out = {}
    for role, split in task.splits.items():
        if split is None:
            continue
        if split not in ds:
            raise UserError(f"task {task.name}: split '{split}' not in the dataset (splits: {', '.join(ds)})")
        out[role] = _to_raw(task, ds[split], split)
    return out, source, revision


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    text = (str(exc).strip().splitlines() or [""])[0][:200]
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
    """Raw label values -> class ids 0..k-1; a bool is 0/1; anything else needs label.map."""
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


def _folder_revision(folder: Path) -> str:
    """A content hash of the mirror's data files (names and sizes and mtimes would lie after a copy)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            h.update(str(p.relative_to(folder)).encode())
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return "sha256:" + h.hexdigest()[:16]


def _hub_revision(task: TaskSpec) -> str | None:
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(task.hub_id, revision=task.revision).sha
    except Exception:  # the data loaded, so only the provenance lookup failed: record what was asked
        return task.revision


# ---------------------------------------------------------------- subsets

def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded permutation whose every prefix is (as nearly as possible) class-stratified."""
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


def apply_limit(raw: dict[str, RawSplit], limit: int | None, seed: int) -> dict[str, RawSplit]:
    if limit is None:
        return raw
    return {role: (s if len(s) <= limit else s.take(stratified_subset(s.labels, limit, seed))) for role, s in raw.items()}


# ---------------------------------------------------------------- formatting and tokenizing

def format_texts(task: TaskSpec, raw: RawSplit, family: str, tokenizer) -> tuple[list[str], list[str] | None]:
    """Decoder: the task's template with the tokenizer's BOS/EOS strings glued in, as the TTL cards do.
    Encoder: one text, or two for a native sentence pair (the tokenizer adds [CLS]/[SEP] and type ids)."""
    n, cols = len(raw), raw.columns
    rows = [{c: cols[c][i] for c in cols} for i in range(n)]
    if family == "decoder":
        specials = {"bos": tokenizer.bos_token or "", "eos": tokenizer.eos_token or ""}
        return [task.decoder_template.format(**specials, **r) for r in rows], None
    first = [task.encoder_templates[0].format(**r) for r in rows]
    second = [task.encoder_templates[1].format(**r) for r in rows] if len(task.encoder_templates) == 2 else None
    return first, second


def tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        import json

        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)  # call state, set by the previous tokenizer call: not the tokenizer itself
        spec.pop("padding", None)
        h.update(json.dumps(spec, sort_keys=True).encode())
    else:
        h.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    h.update(repr(sorted((k, str(v)) for k, v in tokenizer.special_tokens_map.items())).encode())
    h.update(type(tokenizer).__name__.encode())
    return h.hexdigest()


def encode(tokenizer, first: list[str], second: list[str] | None, labels: np.ndarray,
           max_length: int, pairs_need_types: bool) -> EncodedSplit:
    enc = tokenizer(first, second, truncation=True, max_length=max_length,
                    return_token_type_ids=pairs_need_types, return_attention_mask=False)
    ids = enc["input_ids"]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.fromiter((t for x in ids for t in x), dtype=np.int32, count=int(offsets[-1]))
    types = None
    if pairs_need_types:
        types = np.fromiter((t for x in enc["token_type_ids"] for t in x), dtype=np.int8, count=int(offsets[-1]))
    return EncodedSplit(flat, offsets, labels, types)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "poeta-harness") / "tokenized"


def _save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_npz(path: Path) -> dict[str, EncodedSplit] | None:
    try:
        with np.load(path) as z:
            roles = sorted({k.split(".")[0] for k in z.files})
            return {r: EncodedSplit(z[f"{r}.ids"], z[f"{r}.offsets"], z[f"{r}.labels"],
                                    z[f"{r}.type_ids"] if f"{r}.type_ids" in z.files else None) for r in roles}
    except (OSError, ValueError, KeyError):  # unreadable or foreign: tokenize again and overwrite it
        return None


def prepare(task: TaskSpec, tokenizer, family: str, *, max_positions: int | None, mirror: str | None = None,
            limit: int | None = None, seed: int = 0, carve: bool = True, use_cache: bool = True,
            token_types: bool | None = None) -> TaskData:
    """Load, check, subset, format and tokenize a task for one tokenizer. token_types: keep the tokenizer's
    segment ids (default: for encoders)."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be a positive number of examples per split, got {limit}")
    t0 = time.perf_counter()
    raw, source, revision = load_raw(task, mirror)
    full_train = len(raw["train"])
    raw = apply_limit(raw, limit, seed=0)  # the subset is part of the data, not of the run seed
    carved = None
    if carve and "validation" not in raw and task.validation_from_train:
        size = task.validation_from_train["size"]
        if limit is not None:  # keep the carved share of a subset proportional
            size = max(task.label.num_classes, round(size * len(raw["train"]) / full_train))
        carved = carve_validation(raw["train"].labels, size, task.validation_from_train["seed"])
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    max_length = task.max_length or _model_max_length(tokenizer, max_positions)
    needs_types = family == "encoder" if token_types is None else token_types and family == "encoder"
    texts = {role: format_texts(task, s, family, tokenizer) for role, s in raw.items()}
    h = hashlib.sha256()
    h.update(f"v1|{family}|{max_length}|{needs_types}|{tokenizer_fingerprint(tokenizer)}".encode())
    for role in sorted(texts):
        first, second = texts[role]
        h.update(f"|{role}|{len(first)}|".encode())
        h.update("\x1f".join(first).encode())
        if second is not None:
            h.update("\x1e".join(second).encode())
        h.update(raw[role].labels.tobytes())
    key = h.hexdigest()[:32]
    path = cache_dir() / f"{key}.npz"
    splits = _load_npz(path) if use_cache and path.is_file() else None
    hit = splits is not None and set(splits) == set(texts)
    if not hit:
        splits = {role: encode(tokenizer, *texts[role], raw[role].labels, max_length, needs_types) for role in texts}
        if use_cache:
            arrays = {}
            for role, s in splits.items():
                arrays.update({f"{role}.ids": s.ids, f"{role}.offsets": s.offsets, f"{role}.labels": s.labels})
                if s.type_ids is not None:
                    arrays[f"{role}.type_ids"] = s.type_ids
            try:
                _save_npz_atomic(path, arrays)
            except OSError:
                pass  # a read-only cache costs speed, not correctness
    t_tok = time.perf_counter() - t0
    return TaskData(splits=splits, carved=carved, source=source, revision=revision, fingerprint=key,
                    cache_hit=hit, timings={"load_s": t_load, "tokenize_s": t_tok})


def _model_max_length(tokenizer, max_positions: int | None) -> int:
    """Truncate at the tokenizer's limit, capped by the model's positions (some tokenizers say 1e30)."""
    limit = getattr(tokenizer, "model_max_length", None) or 10**9
    if max_positions:
        limit = min(limit, max_positions)
    return int(min(limit, 10**6))
