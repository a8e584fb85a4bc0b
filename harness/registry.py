"""The registry: tasks/*.yaml and models.yaml, loaded and validated into typed specs.

Every task file is checked field by field when loaded; a bad file gives a UserError
that names the file and the field. The registries are plain dicts name -> spec.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from . import metrics as metrics_mod
from .errors import UserError
from .yamlfile import read_yaml

FAMILIES = ("decoder", "encoder")
# The model group `harness table` shows by default: the four models of the TeenyTinyLlama table.
DEFAULT_GROUP = "ttl"
ALL_GROUPS = "all"
# The task suites: a task names the ones it belongs to (`suites:`; default ttl); `harness table --suite NAME`
# shows one, `--suite all` every task.
SUITES = {
    "ttl": "the five tasks of the TeenyTinyLlama table (paper Table 5), accuracy",
    "assin": "ASSIN (2016, pt-BR and pt-PT) and ASSIN 2 (2019): entailment and semantic similarity",
}
ALL_SUITES = "all"
# A hub id is "owner/name" or "name"; no "..", no absolute path: it becomes a folder under a mirror.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SPECIAL_FIELDS = {"bos", "eos"}
# A pinned revision is a full commit; a ref (a branch the hub moves) is allowed but leaves the entry unpinned.
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_KNOWN_REF = re.compile(r"^(main|refs/convert/parquet|refs/convert/duckdb|refs/pr/[0-9]+)$")


def is_commit(revision: str | None) -> bool:
    """True for a full 40-hex commit: the only revision that names one fixed state of a repository."""
    return bool(revision) and bool(_COMMIT.match(revision))


def check_revision(revision: str | None, where: str) -> str | None:
    if revision is None or is_commit(revision) or _KNOWN_REF.match(revision):
        return revision
    hint = " (give all 40 hex digits of the commit)" if re.fullmatch(r"[0-9a-fA-F]{4,39}", revision) else ""
    raise UserError(f"{where}: field 'revision' must be a 40-hex commit or one of main, refs/convert/parquet, "
                    f"refs/convert/duckdb, refs/pr/<n>; got {revision!r}{hint}")


LOCAL_HASH_CHARS = 6  # of a local model folder's path, in its name: 16M values, readable in a table
MAX_LENGTH = 1_000_000  # tokens: far beyond any model's positions; more is a typo the tokenizer cannot take


def registry_root() -> Path:
    """Where tasks/ and models.yaml live: $HARNESS_REGISTRY, the source checkout, or the wheel's copy."""
    env = os.environ.get("HARNESS_REGISTRY")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    checkout = here.parent
    if (checkout / "models.yaml").is_file() and (checkout / "tasks").is_dir():
        return checkout
    return here / "_registry"


@dataclass(frozen=True)
class LabelSpec:
    column: str
    names: tuple[str, ...]  # class names; empty for a regression task
    # Optional raw value -> class id (for string labels); ints and bools map to themselves.
    mapping: dict | None = None
    range: tuple[float, float] | None = None  # regression: the lowest and highest valid label

    @property
    def num_classes(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    display_name: str
    hub_id: str
    revision: str | None
    config: str | None
    splits: dict  # role (train / validation / test) -> split name or None
    decoder_template: str
    encoder_templates: tuple[str, ...]  # one text, or two for a native sentence pair
    label: LabelSpec
    max_length: int | None
    validation_from_train: dict | None  # {"size": int, "seed": int} where the task has no validation split
    published: dict = field(default_factory=dict)  # model name -> accuracy (%)
    sizes: dict = field(default_factory=dict)  # role -> expected examples (documentation; benchmarks size from it)
    order: int = 100  # column position in the table (the published table's order)
    source: str = ""
    type: str = "classification"  # or "regression" (one float output, MSE loss)
    metrics: tuple[str, ...] = metrics_mod.DEFAULT_METRICS["classification"]  # computed on every split, epoch
    main: str = "accuracy"  # picks the epoch (both protocols), heads the table, is what `compare` tests
    suites: tuple[str, ...] = ("ttl",)
    baselines: dict = field(default_factory=dict)  # metric -> declared trivial baseline (else derived)
    max_scores: dict = field(default_factory=dict)  # metric -> declared best reachable score (else perfect)
    references: tuple = ()  # published figures: ({"model", "metric", "value", "source"}, ...)

    @property
    def num_labels(self) -> int:
        """Outputs of the model's head: one per class, or one score for regression."""
        return 1 if self.type == "regression" else self.label.num_classes

    def reference_scores(self, metric: str) -> dict[str, float]:
        """model -> published figure for this metric, in table units (% for the percent metrics)."""
        out = dict(self.published) if metric == "accuracy" else {}
        out.update({r["model"]: metrics_mod.shown(metric, r["value"]) for r in self.references
                    if r["metric"] == metric})
        return out

    @property
    def columns(self) -> set[str]:
        cols = {self.label.column}
        for t in (self.decoder_template, *self.encoder_templates):
            cols |= template_fields(t) - _SPECIAL_FIELDS
        return cols


@dataclass(frozen=True)
class ModelSpec:
    name: str
    display_name: str
    family: str
    hub_id: str | None = None
    revision: str | None = None
    path: str | None = None  # a local folder
    package: str | None = None  # a Python package that ships the weights (get_model_path())
    extra: str | None = None  # the pip extra that installs that package
    aliases: tuple[str, ...] = ()
    trust_remote_code: bool = False
    pad_token: str | None = None  # the token to pad with, for tokenizers without one (see harness/tokens.py)
    groups: tuple[str, ...] = ()  # named sets of models a table can show (DEFAULT_GROUP: the TTL table's rows)
    defined_in: str | None = None  # the registry file, for errors about the entry
    smoke: bool = False  # a smoke-test model (works offline), not one of the compared ones: a bare sweep leaves it out

    @property
    def source(self) -> str:
        return self.hub_id or self.path or f"package:{self.package}"


def template_fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


class _Fields:
    """Reads one mapping from a YAML file, naming the file and field in every error."""

    def __init__(self, data, where: str, allowed: set[str]):
        if not isinstance(data, dict):
            raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed, key=str)
        if unknown:
            raise UserError(f"{where}: unknown field '{unknown[0]}' (valid fields: {', '.join(sorted(allowed))})")
        self.data, self.where = data, where

    def get(self, key, types, required=True, default=None):
        if key not in self.data or self.data[key] is None:
            if required:
                raise UserError(f"{self.where}: missing required field '{key}'")
            return default
        value = self.data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            names = "/".join(t.__name__ for t in _as_tuple(types))
            raise UserError(f"{self.where}: field '{key}' must be {names}, got {type(value).__name__} {value!r}")
        return value


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


def _parse_text(f: _Fields, source: str) -> tuple[str, tuple[str, ...]]:
    """text.decoder (one template) and text.encoder (one, or two for a sentence pair)."""
    tx = _Fields(f.get("text", dict), f"{source}: text", {"decoder", "encoder"})
    decoder = tx.get("decoder", str)
    encoder = tx.get("encoder", (str, list))
    encoder = (encoder,) if isinstance(encoder, str) else tuple(encoder)
    if not 1 <= len(encoder) <= 2 or not all(isinstance(e, str) for e in encoder):
        raise UserError(f"{source}: field 'text.encoder' must be one template or a list of two (a sentence pair)")
    for t in (decoder, *encoder):
        try:
            template_fields(t)
        except ValueError as exc:
            raise UserError(f"{source}: bad template {t!r} ({exc})") from None
    return decoder, encoder


def _parse_label(f: _Fields, source: str, task_type: str) -> LabelSpec:
    lb = _Fields(f.get("label", dict), f"{source}: label", {"column", "names", "map", "range"})
    if task_type == "regression":
        for key in ("names", "map"):
            if key in lb.data:
                raise UserError(f"{source}: field 'label.{key}' is for classification; a regression label has "
                                f"'label.range: [low, high]'")
        bounds = lb.get("range", list)
        if len(bounds) != 2 or not all(_is_number(b) for b in bounds) or not bounds[0] < bounds[1]:
            raise UserError(f"{source}: field 'label.range' must be two numbers [low, high] with low < high, "
                            f"got {bounds!r}")
        return LabelSpec(column=lb.get("column", str), names=(), range=(float(bounds[0]), float(bounds[1])))
    if "range" in lb.data:
        raise UserError(f"{source}: field 'label.range' is for regression tasks (add 'type: regression')")
    names = lb.get("names", list)
    if len(names) < 2 or not all(isinstance(n, str) for n in names) or len(set(names)) < len(names):
        raise UserError(f"{source}: field 'label.names' must list at least two class names, each once")
    mapping = lb.get("map", dict, required=False)
    if mapping is not None and not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(names)
                                       for v in mapping.values()):
        raise UserError(f"{source}: field 'label.map' must map values to class ids 0..{len(names) - 1}")
    return LabelSpec(column=lb.get("column", str), names=tuple(names), mapping=mapping)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_scoring(f: _Fields, source: str) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    """type, metrics, main and suites, with the defaults that keep the TTL task files as they were."""
    task_type = f.get("type", str, required=False, default="classification")
    if task_type not in metrics_mod.TASK_TYPES:
        raise UserError(f"{source}: field 'type' must be one of {', '.join(metrics_mod.TASK_TYPES)}, "
                        f"got {task_type!r}")
    names = f.get("metrics", list, required=False, default=list(metrics_mod.DEFAULT_METRICS[task_type]))
    fitting = [m for m, spec in metrics_mod.METRICS.items() if spec.task_type == task_type]
    if not all(isinstance(m, str) for m in names):
        raise UserError(f"{source}: field 'metrics' must be a list of metric names ({', '.join(fitting)})")
    for m in names:
        if not metrics_mod.fits(m, task_type):
            what = "is not a metric" if m not in metrics_mod.METRICS else f"does not fit a {task_type} task"
            raise UserError(f"{source}: field 'metrics' lists {m!r}, which {what} ({task_type} metrics: "
                            f"{', '.join(fitting)})")
    if not names or len(set(names)) != len(names):
        raise UserError(f"{source}: field 'metrics' must list metrics once each, got {names!r}")
    main = f.get("main", str, required=False, default=metrics_mod.DEFAULT_MAIN[task_type])
    if main not in names:
        raise UserError(f"{source}: field 'main' ({main!r}) must be one of the task's metrics "
                        f"({', '.join(names)})")
    suites = f.get("suites", list, required=False, default=["ttl"])
    for s in suites:
        if not isinstance(s, str) or s not in SUITES:
            raise UserError(f"{source}: field 'suites' names unknown suite {s!r} (valid: {', '.join(SUITES)})")
    if not suites:
        raise UserError(f"{source}: field 'suites' must name at least one suite ({', '.join(SUITES)})")
    return task_type, tuple(names), main, tuple(suites)


def _parse_metric_values(f: _Fields, key: str, source: str, names: tuple[str, ...]) -> dict[str, float]:
    values = f.get(key, dict, required=False, default={})
    for m, v in values.items():
        if m not in names:
            raise UserError(f"{source}: field '{key}.{m}' is not one of the task's metrics ({', '.join(names)})")
        if not _is_number(v):
            raise UserError(f"{source}: field '{key}.{m}' must be a number, got {v!r}")
    return {m: float(v) for m, v in values.items()}


def _parse_references(f: _Fields, source: str, names: tuple[str, ...]) -> tuple:
    refs = f.get("references", list, required=False, default=[])
    out = []
    for i, entry in enumerate(refs):
        rf = _Fields(entry, f"{source}: references[{i}]", {"model", "metric", "value", "source"})
        ref = {"model": rf.get("model", str), "metric": rf.get("metric", str), "value": rf.get("value", (int, float)),
               "source": rf.get("source", str)}
        if ref["metric"] not in names:
            raise UserError(f"{source}: field 'references[{i}].metric' ({ref['metric']!r}) is not one of the task's "
                            f"metrics ({', '.join(names)})")
        out.append({**ref, "value": float(ref["value"])})
    return tuple(out)


def parse_task(data, source: str) -> TaskSpec:
    f = _Fields(data, source, {"name", "display_name", "hub_id", "revision", "config", "splits", "text",
                               "label", "max_length", "validation_from_train", "published", "order", "sizes",
                               "type", "metrics", "main", "suites", "baselines", "max_scores", "references"})
    name = f.get("name", str)
    if not _NAME.match(name):
        raise UserError(f"{source}: field 'name' must be lowercase letters, digits, '.', '_' or '-', got {name!r}")
    hub_id = f.get("hub_id", str)
    if not _HUB_ID.match(hub_id) or ".." in hub_id:
        raise UserError(f"{source}: field 'hub_id' must look like 'owner/name', got {hub_id!r}")

    sp = _Fields(f.get("splits", dict), f"{source}: splits", {"train", "validation", "test"})
    splits = {"train": sp.get("train", str), "validation": sp.get("validation", str, required=False),
              "test": sp.get("test", str)}

    decoder, encoder = _parse_text(f, source)

    task_type, metric_names, main, suites = _parse_scoring(f, source)
    label = _parse_label(f, source, task_type)

    max_length = f.get("max_length", int, required=False)
    if max_length is not None and not 2 <= max_length <= MAX_LENGTH:
        raise UserError(f"{source}: field 'max_length' must be from 2 to {MAX_LENGTH}, got {max_length}")

    carve = f.get("validation_from_train", dict, required=False)
    if carve is not None:
        cv = _Fields(carve, f"{source}: validation_from_train", {"size", "seed"})
        carve = {"size": cv.get("size", int), "seed": cv.get("seed", int, required=False, default=0)}
        if carve["size"] < label.num_classes:
            raise UserError(f"{source}: field 'validation_from_train.size' must be at least the number of classes")
        if splits["validation"]:
            raise UserError(f"{source}: give either 'splits.validation' or 'validation_from_train', not both")

    sizes = _Fields(f.get("sizes", dict, required=False, default={}), f"{source}: sizes",
                    {"train", "validation", "test"})
    sizes = {role: sizes.get(role, int) for role in ("train", "validation", "test") if role in sizes.data}
    if any(n < 1 for n in sizes.values()):
        raise UserError(f"{source}: field 'sizes' must give positive numbers of examples")

    published = f.get("published", dict, required=False, default={})
    for k, v in published.items():
        if not _is_number(v):
            raise UserError(f"{source}: field 'published.{k}' must be a number, got {v!r}")
    if published and "accuracy" not in metric_names:
        raise UserError(f"{source}: field 'published' holds the TTL paper's accuracy (%); for other figures use "
                        f"'references'")

    return TaskSpec(name=name, display_name=f.get("display_name", str), hub_id=hub_id,
                    revision=check_revision(f.get("revision", str, required=False), source),
                    config=f.get("config", str, required=False),
                    splits=splits, decoder_template=decoder, encoder_templates=encoder, label=label,
                    max_length=max_length, validation_from_train=carve,
                    published={str(k): float(v) for k, v in published.items()}, sizes=sizes,
                    order=f.get("order", int, required=False, default=100), source=source, type=task_type,
                    metrics=metric_names, main=main, suites=suites,
                    baselines=_parse_metric_values(f, "baselines", source, metric_names),
                    max_scores=_parse_metric_values(f, "max_scores", source, metric_names),
                    references=_parse_references(f, source, metric_names))


def parse_model(name: str, data, source: str) -> ModelSpec:
    where = f"{source}: {name}"
    f = _Fields(data, where, {"display_name", "family", "hub_id", "revision", "path", "package", "extra",
                              "aliases", "trust_remote_code", "pad_token", "groups", "smoke"})
    if not _NAME.match(name):
        raise UserError(f"{where}: model names must be lowercase letters, digits, '.', '_' or '-'")
    family = f.get("family", str)
    if family not in FAMILIES:
        raise UserError(f"{where}: field 'family' must be one of {', '.join(FAMILIES)}, got {family!r}")
    sources = [k for k in ("hub_id", "path", "package") if f.get(k, str, required=False)]
    if len(sources) != 1:
        raise UserError(f"{where}: give exactly one of 'hub_id', 'path' or 'package'")
    hub_id = f.get("hub_id", str, required=False)
    if hub_id and (not _HUB_ID.match(hub_id) or ".." in hub_id):
        raise UserError(f"{where}: field 'hub_id' must look like 'owner/name', got {hub_id!r}")
    revision = check_revision(f.get("revision", str, required=False), where)
    if revision and not hub_id:
        raise UserError(f"{where}: field 'revision' applies to hub models only (a package is pinned by its version)")
    pad_token = f.get("pad_token", str, required=False)
    if pad_token is not None and not pad_token.strip():
        raise UserError(f"{where}: field 'pad_token' must name a token of the tokenizer, got {pad_token!r}")
    return ModelSpec(name=name, display_name=f.get("display_name", str), family=family, hub_id=hub_id,
                     revision=revision, path=f.get("path", str, required=False),
                     package=f.get("package", str, required=False), extra=f.get("extra", str, required=False),
                     aliases=tuple(f.get("aliases", list, required=False, default=[])),
                     trust_remote_code=f.get("trust_remote_code", bool, required=False, default=False),
                     pad_token=pad_token, groups=name_list(f, "groups"), defined_in=source,
                     smoke=f.get("smoke", bool, required=False, default=False))


def name_list(f: _Fields, key: str) -> tuple[str, ...]:
    """An optional list of lowercase names (a model's groups; a task's suites to come)."""
    names = f.get(key, list, required=False, default=[])
    for n in names:
        if not isinstance(n, str) or not _NAME.match(n) or n == ALL_GROUPS:
            raise UserError(f"{f.where}: field '{key}' must list lowercase names ('{ALL_GROUPS}' is reserved), "
                            f"got {n!r}")
    return tuple(dict.fromkeys(names))


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
