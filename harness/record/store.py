"""Where records live, and writing and finding them.

Layout:  <results>/<task>/<model>/<variant>/seed<k>.json   (a failed run: seed<k>.failed.json)
  A search's candidates (`harness tune`) live one level deeper, under <results>/search/ (harness/record/search.py),
  where record_files does not look: they never pool into a table's cells.
  the variant names the experiment (harness/record/variants.py), so a smoke run never overwrites a real one.
Files are written atomically (harness/files.py): a reader, or a run killed at any moment, never
sees a half-written record.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from harness.errors import UserError
from harness.files import write_atomic
from harness.record.schema import RunRecord
from harness.record.serialize import from_dict, to_json


def record_path(results: Path, task: str, model: str, variant: str, seed: int, failed: bool = False) -> Path:
    return Path(results) / task / model / variant / (f"seed{seed}.failed.json" if failed else f"seed{seed}.json")


def checkpoint_dir(results: Path, task: str, model: str, variant: str, seed: int) -> Path:
    """Checkpoints beside the record: <results>/<task>/<model>/<variant>/checkpoints/seed<k>."""
    return record_path(results, task, model, variant, seed).parent / "checkpoints" / f"seed{seed}"


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
    try:  # os.access says yes to root on a read-only mount or a pseudo-filesystem: try a real (deleted) file
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise UserError(f"results folder '{probe}' is not writable ({exc.strerror}): pass --results DIR") from None


def read_record(path: Path) -> RunRecord:
    with open(path, encoding="utf-8") as fh:
        return from_dict(json.load(fh))


def write_record(results: Path, record: RunRecord) -> Path:
    """A failed run's record goes to seed<k>.failed.json; a complete or pruned one (its epochs are real) to
    seed<k>.json."""
    path = record_path(results, record.task.name, record.model.name, record.variant, record.seed,
                       failed=record.status == "failed")
    write_atomic(path, to_json(record) + "\n")
    if record.status != "failed":  # a result supersedes an earlier failure of the same cell
        record_path(results, record.task.name, record.model.name, record.variant, record.seed,
                    failed=True).unlink(missing_ok=True)
    return path


def is_complete(path: Path) -> bool:
    try:
        return read_record(path).status == "complete"
    except (OSError, ValueError):
        return False


def record_files(results: Path) -> list[Path]:
    return sorted(Path(results).glob("*/*/*/seed*.json"))


def scan(results: Path) -> tuple[list[RunRecord], list[str]]:
    """Every record under results/, and a warning per file that is not a valid record (foreign, truncated,
    or written by a newer harness); version 1 records are migrated as they are read (record_json.migrate_v1)."""
    records, warnings = [], []
    for path in record_files(results):
        try:
            records.append(read_record(path))
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            warnings.append(f"skipped {path}: {exc}")
    return records, warnings
