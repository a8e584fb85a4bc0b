"""What `harness tune` searches: a grid over recipe settings (`--grid lr=1e-5,3e-5 --grid epochs=2,3`), or the
default grid of the run's adaptation; every point checked by RunConfig's own checks before anything runs."""
from __future__ import annotations

import dataclasses
import itertools

from harness.config import RECIPE_FIELDS, RunConfig, run_config_from
from harness.errors import UserError
from harness.record.search import describe_point

# The learning rates the field searches: full fine-tuning around the recipe's 4e-5; LoRA about 10x higher.
DEFAULT_GRIDS = {"full": {"learning_rate": [1e-5, 2e-5, 4e-5, 8e-5]},
                 "lora": {"learning_rate": [1e-4, 2e-4, 4e-4, 8e-4]}}
ALIASES = {"lr": "learning_rate"}
# Only fields that name the variant: two candidates of one variant would share one folder of records.
SEARCHABLE = RECIPE_FIELDS
_TYPES = {f.name: f.type if isinstance(f.type, str) else f.type.__name__ for f in dataclasses.fields(RunConfig)}
_SYNTAX = "--grid takes FIELD=V1,V2,... (e.g. lr=1e-5,2e-5 or epochs=2,3)"


def default_grid(cfg: RunConfig) -> dict[str, list]:
    """The learning-rate grid of the run's adaptation: full fine-tuning or LoRA / QLoRA."""
    return {k: list(v) for k, v in DEFAULT_GRIDS["full" if cfg.peft == "none" else "lora"].items()}


def field_name(name: str) -> str:
    """A grid field as typed (lr, learning-rate, learning_rate) -> RunConfig's name; unknown ones refused."""
    key = ALIASES.get(name.strip(), name.strip().replace("-", "_"))
    if key not in SEARCHABLE:
        names = ", ".join(f"{f} (lr)" if f == "learning_rate" else f for f in SEARCHABLE)
        raise UserError(f"--grid: unknown field '{name.strip()}' (searchable: {names})")
    return key


def _value(key: str, text) -> object:
    """One grid value as its field's type (a float field takes 1e-5; an int field 3)."""
    kind = _TYPES[key]
    if not isinstance(text, str):
        return float(text) if kind == "float" and isinstance(text, int) and not isinstance(text, bool) else text
    try:
        return {"float": float, "int": int}.get(kind, str)(text.strip())
    except ValueError:
        what = "a number" if kind == "float" else "an integer"
        raise UserError(f"--grid {key}: '{text.strip()}' is not {what}") from None


def parse_grid(given: list[str] | dict | None, cfg: RunConfig, settings: dict) -> dict[str, list]:
    """The grid: --grid specs ("lr=1e-5,2e-5", ...) or a mapping field -> values (the Python API), else the
    default grid of cfg's adaptation. settings: the run settings given (None: not given); a field set there
    and searched too is refused. Every point is checked as a RunConfig."""
    if given is None or (isinstance(given, (list, tuple)) and not given):
        grid = default_grid(cfg)
    else:
        grid = {}
        for key, values in (given.items() if isinstance(given, dict) else map(_split, given)):
            key = field_name(key)
            if key in grid:
                raise UserError(f"--grid names {key} twice: give its values once, comma-separated")
            values = [_value(key, v) for v in values]
            if not values:
                raise UserError(f"--grid {key}= names no value: {_SYNTAX}")
            grid[key] = list(dict.fromkeys(values))  # a value given twice is one candidate
    for key in grid:
        if settings.get(key) is not None:
            raise UserError(f"--grid {key} and --{key.replace('_', '-')} both set {key}: search it or fix it, "
                            f"not both")
    for point in points(grid):
        try:
            run_config_from({**settings, **point})
        except UserError as exc:
            raise UserError(f"--grid point {describe_point(point)}: {exc}") from None
    return grid


def _split(spec: str) -> tuple[str, list[str]]:
    key, sep, values = str(spec).partition("=")
    if not sep or not key.strip():
        raise UserError(f"{_SYNTAX}, got '{spec}'")
    return key, [v for v in values.split(",") if v.strip()]


def points(grid: dict[str, list]) -> list[dict]:
    """Every combination, in grid order: the first field varies slowest."""
    return [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
