"""Fingerprints of weight files: a SHA-256 of their bytes, computed once per file and cached.

The cache (<cache root>/fingerprints.json, beside the tokenization cache) is keyed by the file's
resolved path, size and modification time: hashing reads every byte of the weights, a lookup none.
A file rewritten in place gets a new mtime and is hashed again.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.files import sha256_file, write_atomic


def cache_file() -> Path:
    from harness.data.prepare import cache_dir

    return cache_dir().parent / "fingerprints.json"


def weight_files(folder: Path) -> list[Path]:
    """The files transformers loads the weights from: the safetensors files where there are any
    (it prefers them), else the pytorch_model*.bin files. Other formats (flax, tf) are not read."""
    folder = Path(folder)
    safetensors = sorted(folder.glob("*.safetensors"))
    return safetensors or sorted(folder.glob("pytorch_model*.bin"))


def cached_sha256(path: Path, cache: dict) -> str:
    real = Path(path).resolve()  # hub snapshots are symlinks into blobs/
    st = real.stat()
    key = str(real)
    entry = cache.get(key)
    if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        return entry["sha256"]
    cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(real)}
    return cache[key]["sha256"]


def weights_fingerprint(folder: Path) -> str | None:
    """"sha256:<hex>" over the weight files' names and hashes; None where the folder has none."""
    files = weight_files(folder)
    if not files:
        return None
    cache = _read_cache()
    before = dict(cache)
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{cached_sha256(f, cache)}\n".encode())
    if cache != before:
        try:
            write_atomic(cache_file(), json.dumps(cache, indent=0, sort_keys=True) + "\n")
        except OSError:
            pass  # a read-only cache costs time on the next run, not correctness
    return "sha256:" + h.hexdigest()


def _read_cache() -> dict:
    try:
        with open(cache_file(), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):  # absent, unreadable or foreign: start over
        return {}
