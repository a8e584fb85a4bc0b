"""The local hub mirror that datasets and models share: DIR/<hub id>/ is tried before the hub."""
from __future__ import annotations

import os
from pathlib import Path

from harness.errors import UserError
from harness.redact import package_folder

MIRROR_ENV = "HARNESS_MIRROR"


def mirror_root(mirror: str | None) -> Path | None:
    """The mirror given by --mirror or $HARNESS_MIRROR (checked), or None. A folder inside an installed package
    can be named by package (package:harness/embedded: the data shipped in the harness)."""
    root = mirror or os.environ.get(MIRROR_ENV)
    if not root:
        return None
    path = package_folder(root) or Path(root).expanduser()  # package:harness/embedded, as records name it
    if not path.is_dir():
        raise UserError(f"mirror folder '{root}' does not exist or is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise UserError(f"mirror folder '{root}' is not readable")
    return path


def mirror_entry(mirror: str | None, hub_id: str, what: str) -> Path | None:
    """DIR/<hub id>/ under the mirror, if it exists. Hub ids are validated by the registry; the
    check that the folder stays inside the mirror is belt and braces."""
    root = mirror_root(mirror)
    if root is None:
        return None
    folder = (root / hub_id).resolve()
    if root.resolve() not in folder.parents:
        raise UserError(f"{what}: hub id '{hub_id}' escapes the mirror folder")
    return folder if folder.is_dir() else None
