"""The run config: every hyperparameter and speed knob of the fine-tuning routine.

The defaults reproduce the seed recipe's hyperparameters (transformers 4.35 Trainer defaults:
AdamW lr 4e-5, eps 1e-8, weight decay 0.01, batch 16, 3 epochs, linear decay, no warm-up,
gradient clipping at 1.0, seed 42). The speed knobs default to the fast path; SEED_RECIPE (below)
turns them back to the seed's behaviour.
Every field is a CLI flag of `harness run` (--learning-rate, --batch-size, ...).
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

from harness.errors import UserError


def _setting(default, help_text: str):
    """A run setting: its default and the line `harness run --help` shows for it."""
    return field(default=default, metadata={"help": help_text})


def help_of(f: dataclasses.Field) -> str:
    return f.metadata["help"]


@dataclass
class RunConfig:
    learning_rate: float = _setting(4e-5, "AdamW learning rate")
    adam_epsilon: float = _setting(1e-8, "AdamW epsilon")
    # As the Trainer does: not applied to biases and norm weights.
    weight_decay: float = _setting(0.01, "AdamW weight decay (not on biases and norm weights)")
    batch_size: int = _setting(16, "examples per optimizer step")
    epochs: int = _setting(3, "training epochs (validation and test are evaluated after each)")
    warmup_ratio: float = _setting(0.0, "share of steps with linear warm-up before the linear decay")
    max_grad_norm: float = _setting(1.0, "gradient clipping norm; 0 turns it off")
    # Evaluation is forward-only: its batch size changes the numbers only in rounding (EVAL_BATCH below).
    eval_batch_size: int = _setting(
        0, "evaluation batch (forward only, sorted by length; 0 = 128 on CUDA, 32 on CPU)")
    length_grouped: bool = _setting(True, "batches of similar length, in random order (less padding)")
    # bf16 autocast keeps fp32 master weights; a CPU without native bf16 emulates it, slower than fp32, so auto
    # is fp32 there (harness/finetune/precision.py).
    precision: str = _setting(
        "auto", "auto (bf16 autocast on CUDA and on a CPU that computes bf16 natively, avx512_bf16 or AMX; fp32 "
                "elsewhere), fp32 or bf16")
    tf32: bool = _setting(True, "TF32 matmuls on CUDA for what stays fp32")
    attn_implementation: str = _setting(
        "sdpa", "sdpa (eager for models without it, e.g. DeBERTa), eager or flash_attention_2")
    fused_adamw: bool = _setting(True, "the fused AdamW kernel (CUDA, and CPU with torch >= 2.4)")
    pooled_last_layer: bool = _setting(
        True, "compute the last layer only at the position the classifier reads (the same function, "
              "1/num_layers less work; with dropout a seed follows another random path; BERT and Llama "
              "with sdpa or eager attention)")
    fast_dropout: bool = _setting(
        True, "on CPU, dropout masks from numpy's PCG64 instead of torch's generator, which draws them one number "
              "at a time on non-Intel CPUs (the same dropout; another random path, a seed still fixes it; "
              "nn.Dropout modules and attention probabilities)")
    used_embedding_rows: bool = _setting(
        True, "train the input embeddings' rows that the training texts use as a parameter of their own, the other "
              "rows' weight decay applied when the matrix is read (the same function; no pass over the whole "
              "vocabulary's gradient and AdamW state each step)")
    keep_freed_memory: bool = _setting(
        True, "on CPU with glibc, keep the memory a training step frees for the next step instead of returning it to "
              "the kernel (fewer page faults; the same numbers)")
    micro_batch_size: int = _setting(
        0, "gradient accumulation: examples per forward pass (0 = batch size; halved on CUDA OOM)")
    device: str = _setting("auto", "auto, cpu, cuda or cuda:N")
    threads: int = _setting(0, "torch CPU threads (0 = torch's default)")
    save_every_epoch: bool = _setting(
        False, "write a checkpoint after each epoch, beside the record (with LoRA: the adapters and the head)")
    protocols: str = _setting(
        "both", "both, published or clean: which trainings to run where they differ (IMDB, AgNews)")
    # Training part of the model (harness/model/adapters.py); LoRA's settings name the variant.
    peft: str = _setting(
        "none", "none (full fine-tuning), lora (adapters through peft; the head trained in full) or qlora (LoRA on "
                "4-bit base weights through bitsandbytes; CUDA only)")
    lora_r: int = _setting(16, "LoRA rank")
    lora_alpha: int = _setting(32, "LoRA alpha (the adapters are scaled by alpha / r)")
    lora_dropout: float = _setting(0.05, "dropout on the adapters' input")
    lora_targets: str = _setting(
        "auto", "linear layers that get adapters: auto (every linear layer of the backbone: q/k/v/o and MLP "
                "projections for Llama-style decoders, query/key/value/dense for BERT) or names, e.g. q_proj,v_proj")
    gradient_checkpointing: bool = _setting(
        False, "recompute each layer's activations in the backward pass: less memory, about a third more compute, "
               "the same loss and gradients")
    sharding: str = _setting(
        "none", "none or fsdp: with --processes N, shard the weights, gradients and optimizer state over the "
                "processes (torch FSDP2) instead of copying them")
    emissions_country: str = _setting(
        "DEU", "ISO 3166 alpha-3 code of the electricity grid, for the emissions in the record (codecarbon, "
               "offline; the TTL authors report DEU)")

    def __post_init__(self):
        self._check_types()
        checks = [
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.adam_epsilon > 0, "adam_epsilon must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.max_grad_norm >= 0, "max_grad_norm must be >= 0"),
            (self.eval_batch_size >= 0, "eval_batch_size must be >= 0 (0 = by device)"),
            (self.precision in ("auto", "fp32", "bf16"), "precision must be auto, fp32 or bf16"),
            (0 <= self.micro_batch_size <= self.batch_size, "micro_batch_size must be in 0..batch_size"),
            (0 <= self.threads <= MAX_THREADS, f"threads must be in 0..{MAX_THREADS}"),
            (self.protocols in ("both", "published", "clean"), "protocols must be both, published or clean"),
            (self.peft in ("none", "lora", "qlora"), "peft must be none, lora or qlora"),
            (self.lora_r >= 1, "lora_r must be >= 1"),
            (self.lora_alpha > 0, "lora_alpha must be > 0"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (re.fullmatch(r"auto|\w+(,\w+)*", self.lora_targets.replace(" ", "")) is not None,
             "lora_targets must be auto or module names separated by commas, e.g. q_proj,v_proj"),
            (self.peft != "none" or not self._lora_overrides(),
             f"{', '.join(self._lora_overrides())} given without --peft lora (or qlora)"),
            (self.sharding in ("none", "fsdp"), "sharding must be none or fsdp"),
            (not (self.sharding == "fsdp" and self.peft == "qlora"), "sharding fsdp does not combine with peft qlora"),
            (re.fullmatch(r"[A-Z]{3}", self.emissions_country) is not None,
             "emissions_country must be a 3-letter ISO code in capitals, e.g. BRA or DEU"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"bad run setting: {message}")

    def _check_types(self):
        """Values from a sweep file arrive as YAML typed them: refuse a wrong type before comparing it.
        A field typed `X | None` may also be None; a type other than int, float, bool, str is left to its check."""
        wants = {"int": "an integer", "bool": "true or false", "str": "text", "float": "a finite number"}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            optional = kind.endswith(" | None")
            kind = kind.removesuffix(" | None")
            if kind not in wants or (optional and value is None):
                continue
            if kind == "float":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            else:
                ok = isinstance(value, {"int": int, "bool": bool, "str": str}[kind]) and (
                    kind == "bool" or not isinstance(value, bool))
            if not ok:
                hint = " (YAML reads 4e-5 as text: write 4.0e-5)" if kind == "float" and _numeric(value) else ""
                raise UserError(f"bad run setting: {f.name} must be {wants[kind]}, got {value!r}{hint}")

    def _lora_overrides(self) -> list[str]:
        return [f"lora_{k}" for k in ("r", "alpha", "dropout", "targets")
                if getattr(self, f"lora_{k}") != _DEFAULTS[f"lora_{k}"]]

    def overrides(self) -> dict:
        """Every field that differs from the defaults (the record lists them)."""
        default = RunConfig()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    def recipe_overrides(self) -> dict:
        """The overrides that change the experiment itself; they name the results variant.
        Speed knobs (batching order, precision, devices) are recorded but share the variant."""
        return {k: v for k, v in self.overrides().items() if k in RECIPE_FIELDS}


def _numeric(value) -> bool:
    try:
        return isinstance(value, str) and math.isfinite(float(value))
    except ValueError:
        return False


# Evaluation batches where eval_batch_size is 0. On a CPU a larger batch is no faster, and its transient
# activations (128 of the longest texts) stay in the process's heap: 32 kept the peak of a bf16 MiniLM run on
# Assin2 240 MB lower at the same evaluation time (benchmarks/README.md, issue 25).
EVAL_BATCH = {"cuda": 128, "cpu": 32}


def eval_batch_size(cfg: RunConfig, device) -> int:
    """Examples per evaluation batch: cfg.eval_batch_size, or where it is 0 the device's default (EVAL_BATCH)."""
    return cfg.eval_batch_size or EVAL_BATCH.get(device.type, EVAL_BATCH["cuda"])


MAX_THREADS = 1024  # torch would try to start that many; far more is a typo that exhausts the machine

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}

# LoRA's settings change the experiment (a LoRA run never pools with a full fine-tune); gradient checkpointing,
# sharding and the emissions country do not (exact, or not about the run's numbers).
RECIPE_FIELDS = ("learning_rate", "adam_epsilon", "weight_decay", "batch_size", "epochs", "warmup_ratio",
                 "max_grad_norm", "peft", "lora_r", "lora_alpha", "lora_dropout", "lora_targets")


SEED_RECIPE = dict(length_grouped=False, eval_batch_size=16, precision="fp32", save_every_epoch=True,
                   attn_implementation="sdpa", fused_adamw=False, tf32=False, pooled_last_layer=False,
                   fast_dropout=False, keep_freed_memory=False, used_embedding_rows=False)


# ------------------------------------------------------------------ from command-line values

DEFAULT_SEED = 42
MAX_SEED = 2**32 - 1  # what every random generator seeded from it takes (numpy's legacy one is the narrowest)
MAX_SEEDS = 10_000  # --seeds N: more is a typo (and a list that size is already a long sweep)


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def run_config_from(values: dict) -> RunConfig:
    """A RunConfig from the settings given (None: not given, the default holds)."""
    return RunConfig(**{f.name: values[f.name] for f in dataclasses.fields(RunConfig)
                        if values.get(f.name) is not None})


def setting_flags(values: dict) -> list[str]:
    """The run-setting flags for the settings given, to pass to another `harness run`."""
    out = []
    for f in dataclasses.fields(RunConfig):
        value = values.get(f.name)
        if value is None:
            continue
        if isinstance(value, bool):
            out.append(flag_of(f.name) if value else "--no-" + f.name.replace("_", "-"))
        else:
            out += [flag_of(f.name), str(value)]
    return out


def check_limit(limit) -> int | None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise UserError(f"--limit must be a positive number of examples per split, got {limit}")
    return limit


def parse_seeds(seed: str | None, seeds: int | None) -> list[int]:
    """--seed 1,2,3 or --seeds N (N seeds from DEFAULT_SEED); the default is [DEFAULT_SEED]."""
    if seed is not None and seeds is not None:
        raise UserError("give --seed 1,2,3 or --seeds N, not both")
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
            raise UserError(f"--seeds must be from 1 to {MAX_SEEDS}, got {seeds}")
        return list(range(DEFAULT_SEED, DEFAULT_SEED + seeds))
    if seed is None:
        return [DEFAULT_SEED]
    try:
        out = [int(s) for s in seed.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seed takes integers separated by commas, got '{seed}'") from None
    if not out or any(s < 0 for s in out):
        raise UserError(f"--seed takes non-negative integers, got '{seed}'")
    if any(s > MAX_SEED for s in out):
        raise UserError(f"--seed takes integers from 0 to {MAX_SEED} (what the random generators accept), got "
                        f"'{seed}'")
    return list(dict.fromkeys(out))
