"""The registry's typed specs: a task (tasks/<name>.yaml) and a model (an entry of models.yaml), as
harness/registry/parse.py validates them and harness/registry/load.py loads them."""
from __future__ import annotations

import string
from dataclasses import dataclass, field

from harness import metrics as metrics_mod

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
SPLIT_ROLES = ("train", "validation", "test")  # a task's splits, in the order every output lists them
_SPECIAL_FIELDS = {"bos", "eos"}  # template fields that are the tokenizer's tokens, not dataset columns


def template_fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


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
    pad_token: str | None = None  # the token to pad with, for tokenizers without one (see harness/model/pad_token.py)
    groups: tuple[str, ...] = ()  # named sets of models a table can show (DEFAULT_GROUP: the TTL table's rows)
    defined_in: str | None = None  # the registry file, for errors about the entry
    smoke: bool = False  # a smoke-test model (works offline), not one of the compared ones: a bare sweep leaves it out
    parameters: int | None = None  # the published size (rounded); None where the entry does not say

    @property
    def source(self) -> str:
        return self.hub_id or self.path or f"package:{self.package}"
