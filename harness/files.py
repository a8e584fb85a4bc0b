"""Files on disk: atomic writes (a temp file in the same folder, then a rename: a reader, or a process killed at
any moment, sees the old file or the new one, never half of one), content hashes, and the files of a folder
that count (not hidden ones)."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from harness.errors import UserError

CHUNK = 1 << 20  # bytes read at a time when hashing: weight files are gigabytes


def write_atomic(path: Path, content: str | bytes | None = None, *, writer=None) -> Path:
    """Write text, bytes, or whatever writer(binary_file) writes, to path atomically.
    The file gets the user's umask (mkstemp alone would create it -rw-------)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if writer is not None:
                writer(fh)
            else:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_or_fail(path: Path, text: str, what: str, hint: str = "") -> Path:
    """write_atomic, or one line for the user (a UserError) naming what could not be written where, and why."""
    try:
        return write_atomic(path, text)
    except OSError as exc:
        raise UserError(f"cannot write {what} to '{path}': {exc.strerror or exc}{hint}") from None


def hash_file(h, path: Path):
    """Feed a file's bytes to the hash object h, a chunk at a time; returns h."""
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    return hash_file(hashlib.sha256(), path).hexdigest()


def visible_files(folder: Path) -> list[Path]:
    """The files under folder, as paths relative to it, sorted; hidden ones (any part starting with a dot) left
    out: `snapshot_download` keeps its own bookkeeping in .cache/, and nothing loads dotfiles."""
    folder = Path(folder)
    return sorted(p.relative_to(folder) for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
