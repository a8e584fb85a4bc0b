"""Data: a task's splits formatted per model family, tokenized once, and cached on disk.

The cache key is a hash of exactly what tokenization consumes (the formatted texts, the
tokenizer's full definition and max_length), so the same task and tokenizer never tokenize
twice, and models that share a tokenizer share the cache.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.data.splits import LIMIT_SEED, EncodedSplit, RawSplit, apply_limit, carve_validation, load_raw
from harness.files import write_atomic
from harness.registry.specs import TaskSpec

CACHE_ENV = "HARNESS_CACHE"


@dataclass
class TaskData:
    """Everything the routine needs from the data side, with its provenance."""
    splits: dict[str, EncodedSplit]  # "train", "test", and "validation" where the task has one
    carved: dict[str, np.ndarray] | None  # where validation is carved: train indices for "train" and "validation"
    source: str  # "hub", the mirror folder, or "embedded" (the package's own copy)
    revision: str | None
    fingerprint: str  # the tokenization cache key
    cache_hit: bool
    timings: dict[str, float] = field(default_factory=dict)
    max_length: int | None = None  # the truncation length used (the task's, else the tokenizer's and model's limit)


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


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    write_atomic(path, writer=lambda fh: np.savez(fh, **arrays))


def _load_npz(path: Path) -> dict[str, EncodedSplit] | None:
    try:
        with np.load(path) as z:
            roles = sorted({k.split(".")[0] for k in z.files})
            return {r: EncodedSplit(z[f"{r}.ids"], z[f"{r}.offsets"], z[f"{r}.labels"],
                                    z[f"{r}.type_ids"] if f"{r}.type_ids" in z.files else None) for r in roles}
    except (OSError, ValueError, KeyError):  # unreadable or foreign: tokenize again and overwrite it
        return None


def prepare(task: TaskSpec, tokenizer, family: str, *, max_positions: int | None, mirror: str | None = None,
            limit: int | None = None, use_cache: bool = True, token_types: bool | None = None) -> TaskData:
    """Load, check, subset, format and tokenize a task for one tokenizer. token_types: keep the tokenizer's
    segment ids (default: for encoders)."""
    t0 = time.perf_counter()
    raw, source, revision = load_raw(task, mirror)
    full_train = len(raw["train"])
    raw = apply_limit(raw, limit, seed=LIMIT_SEED)  # the subset is part of the data, not of the run seed
    carved = None
    if "validation" not in raw and task.validation_from_train:
        size = task.validation_from_train["size"]
        if limit is not None:  # keep the carved share of a subset proportional
            size = max(task.label.num_classes, 1, round(size * len(raw["train"]) / full_train))
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
    if hit:  # the cache lists its splits by name: back to the order of the data (train, validation, test)
        splits = {role: splits[role] for role in texts}
    else:
        splits = {role: encode(tokenizer, *texts[role], raw[role].labels, max_length, needs_types) for role in texts}
        if use_cache:
            arrays = {}
            for role, s in splits.items():
                arrays.update({f"{role}.ids": s.ids, f"{role}.offsets": s.offsets, f"{role}.labels": s.labels})
                if s.type_ids is not None:
                    arrays[f"{role}.type_ids"] = s.type_ids
            try:
                _save_npz(path, arrays)
            except OSError:
                pass  # a read-only cache costs speed, not correctness
    t_tok = time.perf_counter() - t0
    return TaskData(splits=splits, carved=carved, source=source, revision=revision, fingerprint=key,
                    cache_hit=hit, timings={"load_s": t_load, "tokenize_s": t_tok}, max_length=max_length)


def _model_max_length(tokenizer, max_positions: int | None) -> int:
    """Truncate at the tokenizer's limit, capped by the model's positions (some tokenizers say 1e30)."""
    limit = getattr(tokenizer, "model_max_length", None) or 10**9
    if max_positions:
        limit = min(limit, max_positions)
    return int(min(limit, 10**6))
