"""What this machine already holds: where a task's data or a model's weights would come from here, without
asking the hub (for `harness list` and `harness sweep --dry-run`).

In the order a run looks: a local folder or an installed package (models), the mirror (--mirror or
$HARNESS_MIRROR), the Hugging Face cache, the data shipped in the package (harness/embedded/: the last resort),
else the hub itself.
"""
from __future__ import annotations

import functools
import importlib.util

from harness import embedded
from harness.errors import UserError
from harness.hub.mirror import mirror_entry

HUB = "needs the hub"


@functools.cache
def cached_repos() -> frozenset[tuple[str, str]]:
    """(repo type, repo id) of every repository in the Hugging Face cache (HF_HUB_CACHE), as
    huggingface_hub.scan_cache_dir lists them; empty where there is no cache."""
    try:
        from huggingface_hub import scan_cache_dir

        return frozenset((r.repo_type, r.repo_id) for r in scan_cache_dir().repos)
    except Exception:  # no cache folder yet, or an unreadable one: nothing is cached
        return frozenset()


def task_source(task, mirror: str | None = None) -> str:
    """Where a run of this task would read its data here: mirror, HF cache, package (embedded), or HUB."""
    if _in_mirror(mirror, task.hub_id, f"task {task.name}"):
        return "mirror"
    if ("dataset", task.hub_id) in cached_repos():
        return "HF cache"
    if embedded.folder_for(task.hub_id, task.config):
        return "package (harness)"
    return HUB


def model_source(model, mirror: str | None = None) -> str:
    """Where a run of this model would load it here: local folder, package (installed or not), mirror,
    HF cache, or HUB."""
    if model.path:
        return "local folder"
    if model.package:
        if importlib.util.find_spec(model.package.split(".")[0]) is not None:
            return "package"
        return f"package, not installed (pip install 'poeta-harness[{model.extra}]')" if model.extra else \
            f"package {model.package}, not installed"
    if _in_mirror(mirror, model.hub_id, f"model {model.name}"):
        return "mirror"
    if ("model", model.hub_id) in cached_repos():
        return "HF cache"
    return HUB


def _in_mirror(mirror: str | None, hub_id: str, what: str) -> bool:
    try:
        return mirror_entry(mirror, hub_id, what) is not None
    except UserError:  # a mirror that is no folder: the run will say so; here, it holds nothing
        return False
