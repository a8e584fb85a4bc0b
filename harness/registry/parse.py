"""Validating the registry's YAML: a task file or a models.yaml entry, field by field, into a spec
(harness/registry/specs.py). Every error is a UserError that names the file and the field."""
from __future__ import annotations

import re

from harness import metrics as metrics_mod
from harness.errors import UserError
from harness.registry.specs import (
    ALL_GROUPS,
    FAMILIES,
    SPLIT_ROLES,
    SUITES,
    LabelSpec,
    ModelSpec,
    TaskSpec,
    template_fields,
)
from harness.yamlfile import Fields

# A hub id is "owner/name" or "name"; no "..", no absolute path: it becomes a folder under a mirror.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
# A pinned revision is a full commit; a ref (a branch the hub moves) is allowed but leaves the entry unpinned.
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_KNOWN_REF = re.compile(r"^(main|refs/convert/parquet|refs/convert/duckdb|refs/pr/[0-9]+)$")
MAX_LENGTH = 1_000_000  # tokens: far beyond any model's positions; more is a typo the tokenizer cannot take


def is_commit(revision: str | None) -> bool:
    """True for a full 40-hex commit: the only revision that names one fixed state of a repository."""
    return bool(revision) and bool(_COMMIT.match(revision))


def check_revision(revision: str | None, where: str) -> str | None:
    if revision is None or is_commit(revision) or _KNOWN_REF.match(revision):
        return revision
    hint = " (give all 40 hex digits of the commit)" if re.fullmatch(r"[0-9a-fA-F]{4,39}", revision) else ""
    raise UserError(f"{where}: field 'revision' must be a 40-hex commit or one of main, refs/convert/parquet, "
                    f"refs/convert/duckdb, refs/pr/<n>; got {revision!r}{hint}")


def _parse_text(f: Fields, source: str) -> tuple[str, tuple[str, ...]]:
    """text.decoder (one template) and text.encoder (one, or two for a sentence pair)."""
    tx = Fields(f.get("text", dict), f"{source}: text", {"decoder", "encoder"})
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


def _parse_label(f: Fields, source: str, task_type: str) -> LabelSpec:
    lb = Fields(f.get("label", dict), f"{source}: label", {"column", "names", "map", "range"})
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


def _parse_scoring(f: Fields, source: str) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
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


def _parse_metric_values(f: Fields, key: str, source: str, names: tuple[str, ...]) -> dict[str, float]:
    values = f.get(key, dict, required=False, default={})
    for m, v in values.items():
        if m not in names:
            raise UserError(f"{source}: field '{key}.{m}' is not one of the task's metrics ({', '.join(names)})")
        if not _is_number(v):
            raise UserError(f"{source}: field '{key}.{m}' must be a number, got {v!r}")
    return {m: float(v) for m, v in values.items()}


def _parse_references(f: Fields, source: str, names: tuple[str, ...]) -> tuple:
    refs = f.get("references", list, required=False, default=[])
    out = []
    for i, entry in enumerate(refs):
        rf = Fields(entry, f"{source}: references[{i}]", {"model", "metric", "value", "source"})
        ref = {"model": rf.get("model", str), "metric": rf.get("metric", str), "value": rf.get("value", (int, float)),
               "source": rf.get("source", str)}
        if ref["metric"] not in names:
            raise UserError(f"{source}: field 'references[{i}].metric' ({ref['metric']!r}) is not one of the task's "
                            f"metrics ({', '.join(names)})")
        out.append({**ref, "value": float(ref["value"])})
    return tuple(out)


def parse_task(data, source: str) -> TaskSpec:
    f = Fields(data, source, {"name", "display_name", "hub_id", "revision", "config", "splits", "text",
                               "label", "max_length", "validation_from_train", "published", "order", "sizes",
                               "type", "metrics", "main", "suites", "baselines", "max_scores", "references"})
    name = f.get("name", str)
    if not _NAME.match(name):
        raise UserError(f"{source}: field 'name' must be lowercase letters, digits, '.', '_' or '-', got {name!r}")
    hub_id = f.get("hub_id", str)
    if not _HUB_ID.match(hub_id) or ".." in hub_id:
        raise UserError(f"{source}: field 'hub_id' must look like 'owner/name', got {hub_id!r}")

    sp = Fields(f.get("splits", dict), f"{source}: splits", set(SPLIT_ROLES))
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
        cv = Fields(carve, f"{source}: validation_from_train", {"size", "seed"})
        carve = {"size": cv.get("size", int), "seed": cv.get("seed", int, required=False, default=0)}
        if carve["size"] < label.num_classes:
            raise UserError(f"{source}: field 'validation_from_train.size' must be at least the number of classes")
        if splits["validation"]:
            raise UserError(f"{source}: give either 'splits.validation' or 'validation_from_train', not both")

    sizes = Fields(f.get("sizes", dict, required=False, default={}), f"{source}: sizes",
                    set(SPLIT_ROLES))
    sizes = {role: sizes.get(role, int) for role in SPLIT_ROLES if role in sizes.data}
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
    f = Fields(data, where, {"display_name", "family", "hub_id", "revision", "path", "package", "extra",
                              "aliases", "trust_remote_code", "pad_token", "groups", "smoke", "parameters"})
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
                     smoke=f.get("smoke", bool, required=False, default=False),
                     parameters=parameter_count(f.get("parameters", str, required=False), where))


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMB])$")


def parameter_count(text: str | None, where: str) -> int | None:
    """'110M', '1.1B' -> a count of parameters."""
    if text is None:
        return None
    found = _SIZE.match(text.strip())
    if not found:
        raise UserError(f"{where}: field 'parameters' must look like 110M or 1.1B, got {text!r}")
    return round(float(found.group(1)) * {"K": 1e3, "M": 1e6, "B": 1e9}[found.group(2)])


def name_list(f: Fields, key: str) -> tuple[str, ...]:
    """An optional list of lowercase names (a model's groups; a task's suites to come)."""
    names = f.get(key, list, required=False, default=[])
    for n in names:
        if not isinstance(n, str) or not _NAME.match(n) or n == ALL_GROUPS:
            raise UserError(f"{f.where}: field '{key}' must list lowercase names ('{ALL_GROUPS}' is reserved), "
                            f"got {n!r}")
    return tuple(dict.fromkeys(names))
