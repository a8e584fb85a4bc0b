"""How long each cell of a sweep will take on this device, before anything runs, and which cells need a hub
that does not answer (`harness sweep --dry-run`; a sweep starts with the whole grid's estimate).

A cell's work is its tokens: epochs x fits x (training examples + evaluated examples x EVAL_COST) x tokens per
example, times the model's parameters. Its pace, seconds per parameter x token, comes from the past records
of this device (the same `device` string: CPU model and threads, or GPU name): the model's own where it has
some, else those of every model on this device. Without any, a rough guess from a floating-point rate
(GUESSED_FLOPS: 6 operations a parameter a trained token). Tokens per example come from past records of the
task (any model), else TOKENS_GUESS. The estimate says which basis it used.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from harness.finetune.progress import EVAL_COST_GUESS as EVAL_COST

TOKENS_GUESS = 64  # tokens per example of a task no record has seen (ASSIN-like pairs hold 40 to 80)
# Sustained floating-point rates of a whole training step: CPU measured on this project's 2-core machine
# (MiniLM-L6 on Assin2, benchmarks/README.md, ~150 GFLOP/s counted over every parameter), a GPU guessed.
GUESSED_FLOPS = {"cpu": 7.5e10, "cuda": 4e13}  # cpu: per thread


@dataclass
class Estimate:
    seconds: float | None  # None: nothing to estimate from (no size for the model, no sizes for the task)
    basis: str  # what the figure rests on, said beside it
    needs_hub: list[str]  # hub repositories the cell needs that neither the mirror nor the cache holds, where
    hub: str = ""  # ... the hub cannot be used: why (offline by choice, or no answer)


def _work(record) -> float | None:
    """Parameter x token work of a past run, and its seconds: the unit a pace is measured in."""
    if not (record.tokens and record.timings and record.model.parameters):
        return None
    return record.model.parameters * (record.tokens.train_processed + EVAL_COST * record.tokens.eval_processed)


def paces(records, device: str) -> dict[str, list[float]]:
    """model name -> seconds per parameter x token of its complete past runs on this device; "" -> every model's."""
    out: dict[str, list[float]] = {"": []}
    for r in records:
        work = _work(r) if r.status == "complete" and r.device == device else None
        if work:
            pace = (r.timings.train_s + r.timings.eval_s) / work
            out.setdefault(r.model.name, []).append(pace)
            out[""].append(pace)
    return out


def tokens_per_example(records) -> dict[str, float]:
    """task -> training tokens processed per example, from any complete past run of it."""
    seen: dict[str, list[float]] = {}
    for r in records:
        if r.status == "complete" and r.tokens and r.fits:
            examples = sum(f.train_examples * len(f.epochs) for f in r.fits)
            if examples:
                seen.setdefault(r.task.name, []).append(r.tokens.train_processed / examples)
    return {t: statistics.median(v) for t, v in seen.items()}


def cell_estimate(task, model, cfg, limit: int | None, pace: dict, tokens: dict, device_type: str, threads: int,
                  parameters: dict) -> Estimate:
    """task/model: registry specs; parameters: model name -> its size from past records (for local folders)."""
    size = model.parameters or parameters.get(model.name)
    examples = {role: min(n, limit) if limit else n for role, n in task.sizes.items()}
    if not size or "train" not in examples or "test" not in examples:
        what = "its size" if not size else "the task's split sizes"
        return Estimate(None, f"no estimate: unknown {what}", [])
    train, evaluated = examples["train"], examples["test"] + examples.get("validation", 0)
    fits = 1
    if "validation" not in examples and task.validation_from_train:  # carved: a second fit for the clean protocol
        carved = min(task.validation_from_train["size"], train // 2)
        fits, evaluated = (2 if cfg.protocols == "both" else 1), examples["test"] + carved
    per_example = tokens.get(task.name)
    work = size * cfg.epochs * fits * (train + EVAL_COST * evaluated) * (per_example or TOKENS_GUESS)
    own, every = pace.get(model.name, []), pace.get("", [])
    if own:
        basis = f"{len(own)} past run{'s' if len(own) > 1 else ''} of {model.name} here"
        rate = statistics.median(own)
    elif every:
        basis = f"{len(every)} past run{'s' if len(every) > 1 else ''} of other models here, scaled by size"
        rate = statistics.median(every)
    else:
        flops = GUESSED_FLOPS["cuda"] if device_type == "cuda" else GUESSED_FLOPS["cpu"] * max(1, threads)
        basis, rate = "rough: size x tokens, no past run on this device", 6.0 / flops
    if per_example is None:
        basis += f"; {TOKENS_GUESS} tokens an example guessed"
    return Estimate(rate * work, basis, [])
