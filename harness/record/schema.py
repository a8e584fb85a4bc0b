"""The run record: one JSON file per (task, model, variant, seed). The only schema, field by field.

A run that fails (divergence, out of memory at micro-batch 1) writes a record with status "failed"
and the reason; `harness table` skips and reports those. A candidate of a search (`harness tune`) that its
pruner stopped early writes a record with status "pruned" and the reason (its fits hold the epochs it ran).
Records are built in harness/record/build.py, read and written as JSON (older versions migrated) in
harness/record/serialize.py, and stored and found by harness/record/store.py.

Schema versions. 2 (this one) adds the provenance needed to redo a run and to trust a table pooled
from many: the task definition as used, the command line, the settings as resolved, the model's
revision, package and weight fingerprint, and how the --limit subset was drawn. Version 1 records
are read through migrate_v1() (in memory; the file is left as it is), with what they lack marked
unknown: UNKNOWN in text fields, None in structured ones, and migrated_from = 1. A record newer than
this harness is refused with NewerSchema (harness table warns once, naming the file, and skips it).
3 (issue 13) holds each split's metrics as a mapping (the task's own: accuracy, macro_f1, ... or pearson, ...),
each protocol result's main metric, the task type, and regression labels and predictions as numbers; version 2
records (and version 1 after migrate_v1) are read through upgrade_metrics(), migrated_from saying which.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 3
UNKNOWN = "unknown"  # a text field a migrated older record cannot fill
STATUSES = ("complete", "failed", "pruned")  # a record's status; older records hold the first two


class NewerSchema(ValueError):
    """A record written by a newer harness: its fields may mean things this one does not know."""


@dataclass
class SplitMetrics:
    metrics: dict[str, float]  # the task's metrics (harness/metrics.py): accuracy, macro_f1, ... or pearson, ...
    loss: float  # mean cross-entropy (classification) or mean squared error of the raw outputs (regression)


@dataclass
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch
    test: SplitMetrics
    validation: SplitMetrics | None = None  # None where the fit has no validation split
    # Per test example, in test order (predictions.encode_predictions): classification, one character per predicted
    # class id; regression, the predicted scores to 5 significant digits, space-separated (the metrics above
    # were computed on exactly these values, so they can be recomputed from the record).
    test_predictions: str = ""


@dataclass
class Fit:
    """One training run of the model. Tasks with a validation split need one fit for both protocols;
    tasks without one get a fit on full train (published) and one on train minus a carved validation (clean)."""
    train_set: str  # "train" (the whole split) or "train-minus-carved"
    validation_source: str | None  # "split", "carved" or None
    train_examples: int
    validation_examples: int
    epochs: list[EpochMetrics]
    train_s: float  # wall time in the training steps
    eval_s: float  # wall time evaluating validation and test
    train_tokens_real: int  # non-pad tokens fed to training steps
    train_tokens_processed: int  # tokens incl. padding
    eval_tokens_real: int
    eval_tokens_processed: int
    steps: int  # optimizer steps
    oom_retries: list[dict] = field(default_factory=list)  # {"step", "micro_batch"} each time the batch was split
    # Why the fit stopped before its last epoch (a search's pruner: harness/grid/search.py); None: it ran them all.
    stopped: str | None = None
    # Rows of the input embeddings trained as rows of their own (harness/model/embedding_rows.py: those the training
    # texts use, and the pad token's); None: the whole matrix was trained densely, or it was frozen.
    embedding_rows: int | None = None


@dataclass
class ProtocolResult:
    fit: int  # index into fits
    epoch: int  # the chosen epoch (1-based)
    picked_by: str  # "test <main metric>" (published) or "validation <main metric>" (clean)
    main: str  # the task's main metric, which picked the epoch
    test: dict[str, float]  # every test metric at the chosen epoch

    @property
    def main_score(self) -> float:
        return self.test[self.main]


@dataclass
class TaskInfo:
    name: str  # the registry name (tasks/<name>.yaml)
    display_name: str  # the column header in tables
    hub_id: str  # the dataset's hub id ("owner/name"); also its folder under a mirror
    revision_requested: str | None = None  # the registry's revision (None: the default branch)
    # The data fingerprint: the hub commit, or "sha256:..." of a mirror folder's files (names and bytes).
    revision_resolved: str | None = None
    source: str | None = None  # "hub" or the mirror folder
    # The task as used (provenance.task_definition): type, hub id / config / revision, splits, templates per
    # family, label column / names / map, max_length declared and used, validation carve (size, seed), metrics.
    # None: unknown (a migrated v1 record).
    definition: dict | None = None
    type: str = "classification"  # or "regression": how test_labels and test_predictions are written


@dataclass
class ModelInfo:
    name: str  # the registry name, or a slug of a local folder's name
    display_name: str  # the row header in tables
    family: str  # "decoder" or "encoder"
    source: str  # hub id, folder or package:<module>
    location: str | None = None  # what was loaded: hub id or folder (a mirror's, a package's or the user's)
    revision_resolved: str | None = None  # the 40-hex hub commit that was loaded; None where there is none (folders)
    attn_implementation: str | None = None  # as the loaded model reports it
    parameters: int | None = None  # with the new classification head
    # "pooled": the exact shortcut of pooled_layer.py ran in every forward; "full": in none; "mixed": some
    # forwards needed the full layer (see pooled_layer.py)
    last_layer: str | None = None
    revision_requested: str | None = None  # the registry's revision (None: unpinned, the default branch)
    package: str | None = None  # package models: the installed distribution (pip name) that ships the weights
    package_version: str | None = None  # ... and its version
    # "sha256:..." over the weight files that were loaded (fingerprint.py: safetensors, else pytorch_model*.bin);
    # None where they were not read (a failed run) or not on disk (a hub model outside the local cache).
    weights_fingerprint: str | None = None


@dataclass
class Timings:
    load_s: float  # data, tokenizer, config and model loading
    tokenize_s: float  # formatting and tokenizing (near 0 on a cache hit)
    train_s: float  # training steps, all fits
    eval_s: float  # validation and test evaluations, all fits
    total_s: float  # the whole cell, wall time


@dataclass
class Tokens:
    train_real: int  # non-pad tokens in training batches, all fits
    train_processed: int  # tokens incl. padding
    eval_real: int
    eval_processed: int
    padding_efficiency: float | None  # train_real / train_processed


@dataclass
class PeakMemory:
    bytes: int
    kind: str  # "cuda max allocated" or "process peak RSS"


@dataclass
class HarnessInfo:
    version: str  # the package version
    git_commit: str | None  # None outside a git checkout
    git_dirty: bool | None  # tracked files modified at run time


@dataclass
class DataCache:
    fingerprint: str  # the tokenization cache key (texts, tokenizer, max_length)
    hit: bool  # whether the tokenized data came from the cache


@dataclass
class SubsetInfo:
    """How a --limit run drew its examples (splits.apply_limit)."""
    examples_per_split: int  # N: splits larger than N are cut to N
    seed: int | None  # the subset's seed (fixed: splits.LIMIT_SEED); None: unknown (a migrated v1 record)
    method: str  # splits.LIMIT_METHOD; UNKNOWN in a migrated v1 record


@dataclass
class LoraSettings:
    """LoRA's settings as they ran (harness/model/adapters.py)."""
    r: int  # rank
    alpha: int  # the adapters are scaled by alpha / r
    dropout: float  # on the adapters' input
    targets: list[str]  # the backbone's linear layers that got adapters (names as peft matches them)
    trained_in_full: list[str]  # the head: top-level modules outside the backbone, trained in full (modules_to_save)
    quantization: str | None = None  # QLoRA: how the base weights were stored; None: not quantised


@dataclass
class Adaptation:
    """What was trained (harness/model/adapters.py)."""
    method: str  # "full", "lora" or "qlora"
    trainable_parameters: int  # with a gradient and optimizer state
    total_parameters: int  # as trained, adapters included (LoRA's frozen spare copy of the head not counted)
    base_parameters: int  # as loaded, with the new classification head
    gradient_checkpointing: bool
    sharding: str = "none"  # "fsdp" where the model was sharded over the processes (harness/finetune/sharding.py)
    lora: LoraSettings | None = None  # None for full fine-tuning


@dataclass
class Cost:
    """Energy and emissions of the run (harness/finetune/energy.py; codecarbon offline), summed over processes."""
    country: str  # ISO 3166 alpha-3 code of the grid the emissions are computed for
    tracker: str | None  # "codecarbon <version> offline, tracking mode process"; None where it did not measure
    unavailable: str | None = None  # why there are no figures (codecarbon not installed, or it failed)
    energy_kwh: float | None = None  # CPU + GPU + RAM
    emissions_kg: float | None = None  # kg CO2eq
    cpu_energy_kwh: float | None = None
    gpu_energy_kwh: float | None = None
    ram_energy_kwh: float | None = None
    duration_s: float | None = None  # what the tracker measured: model loading, training and evaluation


@dataclass
class RunRecord:
    schema_version: int  # SCHEMA_VERSION (a migrated record says 3 and keeps migrated_from)
    status: str  # one of STATUSES: "complete", "failed", or "pruned" (a search stopped it early; see Fit.stopped)
    created_at: str  # ISO 8601, UTC
    task: TaskInfo
    model: ModelInfo
    variant: str  # "default" or the slug of overrides / limit (variants.variant_of)
    seed: int  # the run seed: classification-head initialisation and data order
    hyperparameters: dict  # the full run config as given ("auto" left as is; see settings)
    overrides: dict  # the fields that differ from the registered recipe
    limit: int | None  # --limit: examples per split, stratified; None = full data
    dataset_sizes: dict  # role -> examples, as loaded (after --limit); "carved_validation" where carved
    test_labels: str  # gold class id per test example, same encoding as test_predictions
    fits: list[Fit]  # one per training (see Fit)
    protocols: dict[str, ProtocolResult | None]  # "published" / "clean"
    timings: Timings | None  # None for failed runs
    tokens: Tokens | None  # None for failed runs
    peak_memory: PeakMemory | None  # None for failed runs
    device: str  # GPU name, or "cpu: <model name> (<n> threads)"
    packages: dict  # name -> version
    harness: HarnessInfo
    data_cache: DataCache | None  # None for failed runs
    failure: str | None = None  # the reason, for status "failed" or "pruned"
    precision: str | None = None  # as resolved on the device: "fp32" or "bf16" (autocast); None: unknown (older)
    device_type: str | None = None  # "cpu" or "cuda"; None: unknown (older records)
    command_line: list[str] | None = None  # ["harness", "run", ...] as typed, secrets masked; None: unknown or
    # not run from the command line
    # The run config as it ran (provenance.resolved_settings): device, precision, threads, micro-batch size and
    # attention implementation resolved, plus "processes"; None: unknown (failed runs, migrated v1 records).
    settings: dict | None = None
    subset: SubsetInfo | None = None  # how the --limit subset was drawn; None: full data
    migrated_from: int | None = None  # the schema version of the file, where it was migrated on reading
    # What was trained and what it cost; None: a failed run, or a record written before these fields (for those
    # the method was full fine-tuning, since variants with LoRA did not exist).
    adaptation: Adaptation | None = None
    cost: Cost | None = None
    # Why `precision` resolved as it did (harness/finetune/precision.py), e.g. "auto: bf16 autocast, the CPU computes
    # bf16 natively (avx512_bf16)"; None: a failed run, or a record written before the harness said why.
    precision_reason: str | None = None
