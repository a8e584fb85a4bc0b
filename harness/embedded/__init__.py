"""Data shipped inside the package, laid out as a hub mirror (DIR/<hub id>/ plus harness-mirror.lock), so
that `harness demo` and the tasks it holds work anywhere, with no network: today the Brazilian
Portuguese half of ASSIN (v1), MIT-licensed (nilc-nlp/assin/LICENSE and README.md beside the data).

It is the last resort: a run reads a task's data from the mirror (--mirror / $HARNESS_MIRROR) if it
has it, else from the hub, and from here only when the hub is off (HF_HUB_OFFLINE=1) or unreachable.
`harness demo` passes this folder as its mirror, so the demo never touches the network.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def folder_for(hub_id: str, config: str | None = None) -> Path | None:
    """ROOT/<hub id>/ where the package ships that dataset (and that config of it: only ptbr of ASSIN is here)."""
    folder = ROOT / hub_id
    if not folder.is_dir() or ROOT not in folder.resolve().parents:
        return None
    return folder if config is None or (folder / config).is_dir() else None


def holds(path: str | Path) -> bool:
    """Whether a folder is (inside) the embedded copy: the record names the source 'embedded'."""
    resolved = Path(path).resolve()
    return resolved == ROOT or ROOT in resolved.parents
