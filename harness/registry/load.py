"""The registry: tasks/*.yaml and models.yaml, loaded into plain dicts name -> spec (harness/registry/specs.py),
each file validated as it is read (harness/registry/parse.py); and the lookups by name: tasks, models
(registered, by alias, or a local folder) and model groups.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
from pathlib import Path

from harness.errors import UserError
from harness.registry.parse import parse_model, parse_task
from harness.registry.specs import ALL_GROUPS, DEFAULT_GROUP, ModelSpec, TaskSpec
from harness.yamlfile import read_yaml

LOCAL_HASH_CHARS = 6  # of a local model folder's path, in its name: 16M values, readable in a table


def registry_root() -> Path:
    """Where tasks/ and models.yaml live: $HARNESS_REGISTRY, the source checkout, or the wheel's copy."""
    env = os.environ.get("HARNESS_REGISTRY")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]  # harness/
    checkout = package.parent
    if (checkout / "models.yaml").is_file() and (checkout / "tasks").is_dir():
        return checkout
    return package / "_registry"


def load_tasks(root: Path | None = None) -> dict[str, TaskSpec]:
    folder = (root or registry_root()) / "tasks"
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise UserError(f"no task files in {folder}: set HARNESS_REGISTRY to a folder with tasks/*.yaml")
    tasks: dict[str, TaskSpec] = {}
    for path in files:
        task = parse_task(read_yaml(path), str(path))
        if task.name != path.stem:
            raise UserError(f"{path}: field 'name' ({task.name!r}) must match the file name ({path.stem!r})")
        tasks[task.name] = task
    return dict(sorted(tasks.items(), key=lambda kv: (kv[1].order, kv[0])))


def load_models(root: Path | None = None) -> dict[str, ModelSpec]:
    path = (root or registry_root()) / "models.yaml"
    data = read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: expected a mapping of model name -> entry")
    models = {str(name): parse_model(str(name), entry, str(path)) for name, entry in data.items()}
    _check_unique_names(models, path)
    return models


def _check_unique_names(models: dict[str, ModelSpec], path: Path) -> None:
    """A name or alias that means two models: `--model X` would silently pick the first."""
    owner: dict[str, str] = {}
    for m in models.values():
        for n in (m.name, *m.aliases):
            if owner.setdefault(n, m.name) != m.name:
                raise UserError(f"{path}: '{n}' names both '{owner[n]}' and '{m.name}' (a name or an alias): "
                                f"rename one")


def groups_of(models: dict[str, ModelSpec]) -> list[str]:
    return sorted({g for m in models.values() for g in m.groups})


def table_models(models: dict[str, ModelSpec], group: str = DEFAULT_GROUP) -> tuple[list[tuple[str, str]], set[str]]:
    """The rows of a table for one model group, as (name, display) in registry order, and the registered models
    it leaves out. A group's table lists its models, then the models in no group (minilm-l6; a local folder
    is in no group either, and joins as a row where it has records); models of other groups are left out.
    `all` lists every registered model."""
    if group != ALL_GROUPS and group not in groups_of(models):
        raise _unknown("model group", group, groups_of(models) + [ALL_GROUPS])
    shown = [m for m in models.values() if group == ALL_GROUPS or group in m.groups or not m.groups]
    names = {m.name for m in shown}
    return [(m.name, m.display_name) for m in shown], {n for n in models if n not in names}


def _unknown(kind: str, name: str, valid: list[str]) -> UserError:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return UserError(f"unknown {kind} '{name}' (valid: {', '.join(sorted(valid))}){hint}")


def resolve_task(name: str, tasks: dict[str, TaskSpec]) -> TaskSpec:
    if name in tasks:
        return tasks[name]
    raise _unknown("task", name, list(tasks))


def resolve_model(name: str, models: dict[str, ModelSpec], family: str | None = None) -> ModelSpec:
    """A registered name or alias, or a local folder holding a transformers model."""
    for spec in models.values():
        if name == spec.name or name in spec.aliases:
            return spec
    folder = Path(name).expanduser()
    if folder.is_dir():
        return local_model(folder, family)
    if "/" in name or os.sep in name:
        raise UserError(f"model folder '{name}' does not exist (or give a registered model name: "
                        f"{', '.join(sorted(models))})")
    raise _unknown("model", name, [n for s in models.values() for n in (s.name, *s.aliases)])


def local_model(folder: Path, family: str | None = None) -> ModelSpec:
    config = folder / "config.json"
    if not config.is_file():
        raise UserError(f"model folder '{folder}' has no config.json: is it a saved transformers model?")
    if family is None:
        import json

        try:
            conf = json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            raise UserError(f"model folder '{folder}': config.json is not valid JSON") from None
        archs = conf.get("architectures") if isinstance(conf, dict) else None
        if not isinstance(conf, dict) or not isinstance(archs or [], list):
            raise UserError(f"model folder '{folder}': config.json is not a transformers config (an object with "
                            f"'architectures' as a list); fix it or pass --family")
        family = "decoder" if any(str(a).endswith("ForCausalLM") for a in archs or []) else "encoder"
    return ModelSpec(name=local_name(folder), display_name=folder.resolve().name, family=family,
                     path=str(folder.resolve()))


def local_name(folder: Path) -> str:
    """A local model's name in records and paths: the folder's name and a short hash of its resolved path,
    so two folders called `model` (say, runs/a/model and runs/b/model) never share a record."""
    where = folder.resolve()
    slug = re.sub(r"[^a-z0-9._-]+", "-", where.name.lower()).strip("-") or "local"
    return f"{slug}-{hashlib.sha256(str(where).encode()).hexdigest()[:LOCAL_HASH_CHARS]}"
