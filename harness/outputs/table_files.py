"""Where `harness table` writes, so that no file it left behind goes stale silently.

Each file's name says what it holds: <results>/table-<protocol>-<variant or all-variants>.<ext>, so
`--variant X` never overwrites the all-variants file, nor one protocol the other. A manifest,
<results>/.tables.json, remembers for each file written to its default place what it was built from
(protocol, variant, format, a fingerprint of the records); every `harness table` warns about each
such file that later runs have made stale, with the command that refreshes it, and about files
named the old way (table-<protocol>.<ext>), which nothing updates any more.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.aggregate.groups import precision_of
from harness.files import write_atomic
from harness.record.protocols import TUNED

EXTENSIONS = {"markdown": "md", "csv": "csv", "latex": "tex", "json": "json"}
ALL_VARIANTS = "all-variants"
MANIFEST = ".tables.json"
OLD_NAMES = [f"table-{p}.{e}" for p in ("published", "clean") for e in EXTENSIONS.values()]


def default_path(results: Path, protocol: str, variant: str | None, fmt: str) -> Path:
    return Path(results) / f"table-{protocol}-{variant or ALL_VARIANTS}.{EXTENSIONS[fmt]}"


def command_for(protocol: str, variant: str | None, fmt: str) -> str:
    return (f"harness table --protocol {protocol} --format {fmt}" + (f" --variant {variant}" if variant else ""))


def fingerprint(records, variant: str | None) -> tuple[str, int]:
    """(a hash of the complete records a table of this variant selection is built from, how many)."""
    keys = sorted(f"{r.task.name}/{r.model.name}/{r.variant}/{r.seed}/{precision_of(r)}/{r.created_at}"
                  for r in records if r.status == "complete" and (variant is None or r.variant == variant))
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16], len(keys)


def footer(records, variant: str | None) -> str:
    """The markdown table's last line: what it was built from, so a reader can tell it from a later one."""
    chosen = [r for r in records if r.status == "complete" and (variant is None or r.variant == variant)]
    newest = max((r.created_at for r in chosen), default="–")
    return (f"_Built from {len(chosen)} complete records, the newest written {newest}; `harness table` warns when "
            f"later runs make this file stale._")


def _manifest(results: Path) -> dict:
    try:
        data = json.loads((Path(results) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember(results: Path, path: Path, protocol: str, variant: str | None, fmt: str, records) -> None:
    """Note what the file at its default place was just built from."""
    entries = _manifest(results)
    digest, count = fingerprint(records, variant)
    entries[Path(path).name] = {"protocol": protocol, "variant": variant, "format": fmt, "fingerprint": digest,
                                "records": count}
    write_atomic(Path(results) / MANIFEST, json.dumps(entries, indent=1, sort_keys=True) + "\n")


def stale(results: Path, records, tuned: bool = False) -> list[str]:
    """One warning per table file under results that no longer shows what the records hold. tuned: the records are
    the tuned protocol's cells (aggregate/tuned.py), so only tuned tables are compared with them (and the others only
    with ordinary records)."""
    warnings = []
    for name, entry in sorted(_manifest(results).items()):
        try:
            protocol, variant, fmt = entry["protocol"], entry["variant"], entry["format"]
            if not (Path(results) / name).is_file() or (protocol == TUNED) != tuned:
                continue
            digest, count = fingerprint(records, variant)
            if digest != entry["fingerprint"]:
                warnings.append(f"{Path(results) / name} is stale: built from {entry['records']} records, the "
                                f"results now hold {count}, new or changed; refresh it with "
                                f"`{command_for(protocol, variant, fmt)}`")
        except (KeyError, TypeError):
            continue
    for name in OLD_NAMES:
        if (Path(results) / name).is_file():
            warnings.append(f"{Path(results) / name} was written by an older harness and is no longer updated "
                            f"(tables are now named table-<protocol>-<variant>.<ext>): delete it")
    return warnings
