"""Paired comparison of two models on the same test examples (harness compare).

Per seed both models saw the same test examples, so an exact McNemar test on the discordant
examples is the right per-seed test. Over several seeds, a paired bootstrap over test examples
(each example's correctness averaged over seeds) gives one p-value that uses every seed.
"""
from __future__ import annotations

import numpy as np

from . import stats
from .errors import UserError
from .scores import decode_ids


def _predictions(record, protocol: str) -> np.ndarray:
    result = record.protocols.get(protocol)
    if result is None:
        raise UserError(f"{record.task.name}/{record.model.name} seed {record.seed} has no {protocol} result")
    return decode_ids(record.fits[result.fit].epochs[result.epoch - 1].test_predictions)


def compare_models(records, task: str, a: str, b: str, protocol: str, variant: str) -> str:
    def pick(model):
        return {r.seed: r for r in records if r.status == "complete" and r.task.name == task
                and r.model.name == model and r.variant == variant}

    ra, rb = pick(a), pick(b)
    for name, found in ((a, ra), (b, rb)):
        if not found:
            raise UserError(f"no records for {task}/{name} (variant '{variant}'): run it first")
    seeds = sorted(set(ra) & set(rb))
    if not seeds:
        raise UserError(f"{a} and {b} share no seed on {task}: run the same seeds for both")
    lines = [f"{task}: {a} vs {b}, protocol {protocol}, variant {variant}, seeds {seeds}",
             "seed  acc_A   acc_B   only_A_right  only_B_right  McNemar_p"]
    correct_a, correct_b = [], []
    for s in seeds:
        gold_a, gold_b = decode_ids(ra[s].test_labels), decode_ids(rb[s].test_labels)
        if len(gold_a) != len(gold_b) or not np.array_equal(gold_a, gold_b):
            raise UserError(f"{a} and {b} seed {s} were tested on different examples (different --limit or data)")
        pa, pb = _predictions(ra[s], protocol), _predictions(rb[s], protocol)
        p, only_a, only_b = stats.mcnemar_p(pa, pb, gold_a)
        correct_a.append(pa == gold_a)
        correct_b.append(pb == gold_a)
        lines.append(f"{s:<5} {100 * np.mean(pa == gold_a):6.2f}  {100 * np.mean(pb == gold_a):6.2f}  "
                     f"{only_a:>12}  {only_b:>12}  {p:9.4f}")
    p = stats.paired_bootstrap_p(np.array(correct_a), np.array(correct_b))
    diff = 100 * (np.mean(correct_a) - np.mean(correct_b))
    lines.append(f"paired bootstrap over test examples (seeds pooled): difference {diff:+.2f} points, p = {p:.4f}"
                 f" -> {'significant' if p < 0.05 else 'not significant'} at 0.05")
    return "\n".join(lines)
