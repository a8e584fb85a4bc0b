"""The mirror's lock file: DIR/harness-mirror.lock says, per repository, which revision was asked for,
which commit it resolved to, and the sha256 of every file. `harness prefetch` writes it; a run that
loads DIR/<hub id>/ checks that folder against it, so a changed, missing or added file is caught
before it can change a result, and the record carries the commit.

A mirror without a lock (a folder laid out by hand) is read as before, unverified.
"""
from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import UserError
from harness.files import sha256_file, visible_files, write_atomic

LOCK_NAME = "harness-mirror.lock"
LOCK_FORMAT = "poeta-harness mirror lock"
LOCK_VERSION = 1
_AGAIN = "run `harness prefetch` again or restore the file"


@dataclass(frozen=True)
class LockEntry:
    repo: str  # the hub id; its files are DIR/<repo>/...
    repo_type: str  # "dataset" or "model"
    revision: str | None  # as registered (None: the default branch)
    commit: str | None  # what the revision resolved to when fetched (None: not fetched from the hub)
    files: dict  # path inside DIR/<repo>/ -> sha256 hex


def repo_files(folder: Path) -> list[str]:
    """Files of a repository folder, as posix paths relative to it (hidden ones left out: files.visible_files)."""
    return sorted(rel.as_posix() for rel in visible_files(folder))


def sha256_of(path: Path) -> str:
    st = path.stat()
    return _sha256(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """Cached on (path, size, mtime): the seeds of one run hash a model's weights once; a rewritten file
    has a new mtime and is hashed again."""
    return sha256_file(path)


def entry_from_folder(folder: Path, repo: str, repo_type: str, revision: str | None,
                      commit: str | None) -> LockEntry:
    """The lock entry for what is in the folder now."""
    return LockEntry(repo=repo, repo_type=repo_type, revision=revision, commit=commit,
                     files={name: sha256_of(folder / name) for name in repo_files(folder)})


def read_lock(root: Path) -> dict[str, LockEntry]:
    """repo -> entry; empty when the mirror has no lock."""
    path = root / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != LOCK_FORMAT or data.get("version") != LOCK_VERSION:
            raise ValueError(f"expected format '{LOCK_FORMAT}' version {LOCK_VERSION}")
        entries = [LockEntry(**e) for e in data["repos"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: not a readable mirror lock ({exc}); run `harness prefetch` again") from None
    return {e.repo: e for e in entries}


def write_lock(root: Path, entries: dict[str, LockEntry]) -> Path:
    data = {"format": LOCK_FORMAT, "version": LOCK_VERSION,
            "repos": [asdict(entries[k]) for k in sorted(entries)]}
    path = root / LOCK_NAME
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


def verify(root: Path, repo: str) -> LockEntry | None:
    """Check DIR/<repo>/ against the lock. Returns its entry, or None where the mirror has no lock or
    the lock does not list the repo. A file that differs, is missing or is not listed: one-line error."""
    entry = read_lock(root).get(repo)
    if entry is None:
        return None
    folder = root / repo
    where = f"mirror {root}: {repo}"
    for name, want in sorted(entry.files.items()):
        path = folder / name
        if not path.is_file():
            raise UserError(f"{where}/{name} is listed in {LOCK_NAME} but missing; {_AGAIN}")
        got = sha256_of(path)
        if got != want:
            raise UserError(f"{where}/{name} differs from {LOCK_NAME} (sha256 {got[:12]}..., locked "
                            f"{want[:12]}...); {_AGAIN}")
    extra = sorted(set(repo_files(folder)) - set(entry.files))
    if extra:
        raise UserError(f"{where}/{extra[0]} is not in {LOCK_NAME} (files added after the prefetch change what "
                        f"loads); remove it or run `harness prefetch` again")
    return entry


def verify_location(folder: str | Path, repo: str | None) -> LockEntry | None:
    """verify() for a folder that may be DIR/<repo>/ of a mirror; None for anything else (a local model
    folder, a hub id, a package)."""
    if not repo:
        return None
    folder = Path(folder)
    depth = len(Path(repo).parts)
    if not folder.is_dir() or tuple(folder.parts[-depth:]) != Path(repo).parts:
        return None
    return verify(folder.parents[depth - 1], repo)
