"""Claims: which worker trains a search's candidate (or runs its final seeds), so that no candidate runs twice
and a killed worker's candidate is taken over.

Written by hand, not taken from Optuna, because Optuna cannot say it: its GridSampler hands a grid point that is
still RUNNING in another worker to a new worker once every point has started (samplers/_grid.py,
_get_unvisited_grid_ids), and its journal storage has no heartbeat, so a killed worker's trial stays RUNNING
forever and nothing tells a live trial from a dead one.

A claim is a file `<prefix>.<generation>` in the candidate's folder, created with O_EXCL (atomic, also on NFS
v3+), holding the holder's host, pid and a heartbeat time that a thread refreshes while it works. The claim in
force is the highest generation. It is live unless released, or its holder is gone: on this host, a pid that no
longer runs; anywhere, a heartbeat older than STALE_AFTER_S. A worker takes over a stale claim by creating the
next generation: of several that try, exactly one succeeds. Files are never deleted (a release rewrites the file),
so generations only grow and an old view of the folder can never win a generation someone else holds. Whoever
holds a claim checks the candidate's records again before working: a claim guards the work, the records say
whether it is done.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

from harness.files import write_atomic

HEARTBEAT_S = 30.0  # how often a holder refreshes its claim
STALE_AFTER_S = 300.0  # a claim not refreshed for this long is dead (a node that vanished, a frozen process)


def _generations(folder: Path, prefix: str) -> list[int]:
    out = []
    for p in Path(folder).glob(f"{prefix}.*"):
        tail = p.name[len(prefix) + 1:]
        if tail.isdigit():
            out.append(int(tail))
    return sorted(out)


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it runs
        return True
    try:  # a killed child its parent has not reaped yet still answers kill(pid, 0)
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def holder_of(path: Path) -> dict | None:
    """The claim's content, or None where it cannot be read (just created and not yet written)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_live(path: Path, now: float | None = None) -> bool:
    """Whether the claim at path is held by a worker that still works."""
    now = time.time() if now is None else now
    info = holder_of(path)
    if info is None:  # being written: live while fresh
        try:
            return now - Path(path).stat().st_mtime < STALE_AFTER_S
        except OSError:
            return False
    if info.get("released"):
        return False
    if info.get("host") == socket.gethostname() and not _pid_running(int(info.get("pid", -1))):
        return False
    return now - float(info.get("heartbeat", 0)) < STALE_AFTER_S


def live_claim(folder: Path, prefix: str = "claim") -> Path | None:
    """The claim in force in folder, where it is live."""
    generations = _generations(folder, prefix)
    if not generations:
        return None
    path = Path(folder) / f"{prefix}.{generations[-1]}"
    return path if is_live(path) else None


class Claim:
    """A held claim; `with claim:` releases it at the end (a heartbeat thread keeps it live until then)."""

    def __init__(self, path: Path):
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {path.name}")

    def _content(self, released: bool = False) -> str:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time(),
                           "released": released}) + "\n"

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                write_atomic(self.path, self._content())
            except OSError:  # a full or vanished share: the next beat tries again
                pass

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        write_atomic(self.path, self._content(released=True))

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_claim(folder: Path, prefix: str = "claim") -> Claim | None:
    """Claim the work of folder: a Claim where no live worker holds it and this one won the next generation;
    None where another worker holds it (or won the race to take it over)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generations = _generations(folder, prefix)
    if generations and is_live(folder / f"{prefix}.{generations[-1]}"):
        return None
    path = folder / f"{prefix}.{generations[-1] + 1 if generations else 0}"
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    claim = Claim(path)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(claim._content())
    claim._thread.start()
    return claim
