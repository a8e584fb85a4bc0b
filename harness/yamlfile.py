"""Reading the YAML files a user writes (task files, models.yaml, sweep files).

Safe types only, UTF-8 text, and no duplicate keys: PyYAML keeps the last of two equal keys, so a
second `minilm-l6:` entry in models.yaml would silently replace the first. Every problem is one
UserError line naming the file (and the line where there is one).
"""
from __future__ import annotations

from pathlib import Path

import yaml

from harness.errors import UserError


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, refusing a mapping that gives the same key twice."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` overrides on purpose
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # an unhashable key: SafeLoader reports it below
                    continue
                if duplicate:
                    raise _DuplicateKey("while constructing a mapping", node.start_mark, f"duplicate key {key!r}",
                                        key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path):
    """The data in a YAML file, or a one-line UserError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise UserError(f"{path}: line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as "
                        f"UTF-8") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except _DuplicateKey as exc:
        raise UserError(f"{path}: line {exc.problem_mark.line + 1}: {exc.problem} (the second would silently "
                        f"replace the first: remove or rename one)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UserError(f"{path}:{at} invalid YAML ({problem})") from None


class Fields:
    """One mapping read from a YAML file, field by field, naming the file and the field in every error.
    prefix: how a nested mapping's fields are named (e.g. "slurm." for slurm.gpus)."""

    def __init__(self, data, where: str, allowed, what: str = "a mapping", prefix: str = ""):
        if not isinstance(data, dict):
            raise UserError(f"{where}: expected {what}, got {type(data).__name__}")
        unknown = sorted(set(data) - set(allowed), key=str)
        if unknown:
            raise UserError(f"{where}: unknown field '{prefix}{unknown[0]}' (valid fields: "
                            f"{', '.join(sorted(allowed))})")
        self.data, self.where, self.prefix = data, where, prefix

    def get(self, key, types, required=True, default=None):
        """The field's value, checked against types (a bool is no int unless bool is named); default if absent."""
        if key not in self.data or self.data[key] is None:
            if required:
                raise UserError(f"{self.where}: missing required field '{self.prefix}{key}'")
            return default
        value = self.data[key]
        types = types if isinstance(types, tuple) else (types,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join(t.__name__ for t in types)
            raise UserError(f"{self.where}: field '{self.prefix}{key}' must be {names}, got {type(value).__name__} "
                            f"{value!r}")
        return value
