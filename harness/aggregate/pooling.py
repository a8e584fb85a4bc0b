"""No silent mixing: the seeds pooled into one table cell must come from the same experiment.

A cell is (variant, task, model). Its records must agree on every field of FIELDS: a task YAML edited
between two seeds, data re-downloaded at another commit, other weights under the same model name, or
another precision would otherwise be averaged into one number. Values a record cannot know (a migrated
v1 record's unknown provenance) are not compared. Pure functions over a results DataFrame (results.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.errors import UserError
from harness.record.schema import UNKNOWN

# What must agree within a cell: a name for messages -> the results DataFrame column holding it.
FIELDS = {
    "task definition": "task_definition_fingerprint",
    "data fingerprint": "data_fingerprint",
    "model fingerprint": "model_fingerprint",
    "precision": "precision",
}
# Tables show each precision as its own group (selection.py), so within a table cell only these must agree.
WITHIN_A_PRECISION = {k: v for k, v in FIELDS.items() if k != "precision"}
CELL = ["variant", "task", "model"]


@dataclass
class Conflict:
    variant: str
    task: str
    model: str
    field: str
    seeds: dict  # value -> seeds holding it

    def describe(self) -> str:
        parts = "; ".join(f"seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}: {_short(v)}"
                          for v, s in self.seeds.items())
        return f"{self.task}/{self.model} (variant {self.variant}) differs in {self.field} ({parts})"


def _short(value) -> str:
    text = str(value)
    return text[:23] + "…" if len(text) > 24 else text


def _known(value) -> bool:
    return value is not None and value == value and value != UNKNOWN  # value == value: not NaN


def conflicts(df, fields: dict = FIELDS) -> list[Conflict]:
    """Every (cell, field) whose records hold more than one known value."""
    out = []
    for (variant, task, model), cell in df.groupby(CELL, sort=True):  # several rows per record: seeds as sets
        for name, column in fields.items():
            seeds: dict = {}
            for value, seed in zip(cell[column], cell["seed"], strict=True):
                if _known(value):
                    seeds.setdefault(value, set()).add(int(seed))
            if len(seeds) > 1:
                out.append(Conflict(variant, task, model, name, {v: sorted(s) for v, s in seeds.items()}))
    return out


def check(df, fields: dict = FIELDS) -> None:
    """UserError (one line) naming the first mixed cell and the field that differs, and how many more there are."""
    found = conflicts(df, fields)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UserError(f"will not pool records that differ: {found[0].describe()}{more}. Rerun those seeds, or "
                        f"move one side to another --results folder")
