"""Paired comparison of two models on the same test examples (harness compare), on any metric.

Per seed both models saw the same test examples. For classification, an exact McNemar test on the
discordant examples is the per-seed test (of accuracy: only the examples where exactly one model is right
carry information). Over several seeds, a paired bootstrap over test examples gives one p-value that uses
every seed: on accuracy, each example's correctness averaged over seeds (stats.paired_bootstrap_p); on any
other metric (macro-F1, Pearson, ...), which does not split into per-example parts, each resample of the
test examples is scored whole, per seed, with the same examples for both models and every seed, and the
per-seed scores averaged (paired_bootstrap_metric_p below).
"""
from __future__ import annotations

import numpy as np

from . import metrics, stats
from .errors import UserError
from .scores import decode_predictions

BOOTSTRAP_ROUNDS = 10000


def _predictions(record, protocol: str) -> np.ndarray:
    result = record.protocols.get(protocol)
    if result is None:
        raise UserError(f"{record.task.name}/{record.model.name} seed {record.seed} has no {protocol} result")
    return decode_predictions(record.fits[result.fit].epochs[result.epoch - 1].test_predictions, record.task.type)


def paired_bootstrap_metric_p(pred_a: np.ndarray, pred_b: np.ndarray, gold: np.ndarray, metric: str,
                              rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> tuple[float, float]:
    """(observed difference A - B of the metric averaged over seeds, two-sided p that it differs from 0).
    pred_*: (seeds, examples), gold: (examples,). Each round resamples the test examples (columns) with the
    same indices for both models and all seeds, scores each seed's resample whole, averages over seeds.
    SEAM (issue 12): the seed-aware bootstrap of harness/stats.py, generic over a metric callable, replaces this
    at merge; the callable is `lambda pred, gold: metrics.batched(metric, pred, gold)` (rows = resamples)."""
    pa, pb = np.atleast_2d(pred_a), np.atleast_2d(pred_b)
    observed = float(np.mean(metrics.batched(metric, pa, np.broadcast_to(gold, pa.shape)))
                     - np.mean(metrics.batched(metric, pb, np.broadcast_to(gold, pb.shape))))
    rng = np.random.default_rng(seed)
    n = len(gold)
    boot = np.zeros(rounds)
    chunk = max(1, 2_000_000 // max(1, n))  # resamples per batch: bounded memory
    for start in range(0, rounds, chunk):
        idx = rng.integers(0, n, size=(min(chunk, rounds - start), n))
        g = gold[idx]
        diff = sum(metrics.batched(metric, a[idx], g) - metrics.batched(metric, b[idx], g)
                   for a, b in zip(pa, pb, strict=True)) / len(pa)
        boot[start:start + len(idx)] = diff
    # As stats.paired_bootstrap_p: shift to the null (difference 0), count resamples at least as extreme.
    p = np.mean(np.abs(boot - observed) >= abs(observed))
    return observed, float(max(p, 1.0 / rounds))


def compare_models(records, task: str, a: str, b: str, protocol: str, variant: str, metric: str | None = None) -> str:
    """metric: the one the bootstrap tests (default: the task's main metric, as the records name it)."""
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
    first = ra[seeds[0]]
    metric = metric or _main_metric(first, protocol)
    if metric not in metrics.METRICS or metrics.METRICS[metric].task_type != first.task.type:
        fitting = [m for m, spec in metrics.METRICS.items() if spec.task_type == first.task.type]
        raise UserError(f"metric '{metric}' does not fit {task}, a {first.task.type} task ({', '.join(fitting)})")
    classification = first.task.type == "classification"
    preds_a, preds_b, gold = [], [], None
    for s in seeds:
        gold_a = decode_predictions(ra[s].test_labels, ra[s].task.type)
        gold_b = decode_predictions(rb[s].test_labels, rb[s].task.type)
        if len(gold_a) != len(gold_b) or not np.array_equal(gold_a, gold_b):
            raise UserError(f"{a} and {b} seed {s} were tested on different examples (different --limit or data)")
        if gold is not None and not np.array_equal(gold, gold_a):
            raise UserError(f"seed {s} of {task} was tested on other examples than seed {seeds[0]}")
        gold = gold_a
        preds_a.append(_predictions(ra[s], protocol))
        preds_b.append(_predictions(rb[s], protocol))
    if metric == "accuracy":
        return _accuracy_report(task, a, b, protocol, variant, seeds, preds_a, preds_b, gold)
    m = metrics.METRICS[metric]
    lines = [f"{task}: {a} vs {b}, protocol {protocol}, variant {variant}, seeds {seeds}, metric {metric}",
             f"seed  {m.display}_A  {m.display}_B" + ("  only_A_right  only_B_right  McNemar_p(accuracy)"
                                                      if classification else "")]
    width = len(m.display) + 2
    for s, pa, pb in zip(seeds, preds_a, preds_b, strict=True):
        line = f"{s:<5} {_fmt(metric, m.fn(pa, gold)):>{width}}  {_fmt(metric, m.fn(pb, gold)):>{width}}"
        if classification:
            p, only_a, only_b = stats.mcnemar_p(pa, pb, gold)
            line += f"  {only_a:>12}  {only_b:>12}  {p:19.4f}"
        lines.append(line)
    diff, p = paired_bootstrap_metric_p(np.array(preds_a), np.array(preds_b), gold, metric)
    unit = " points" if m.percent else ""
    better = "" if m.higher_is_better else " (lower is better)"
    lines.append(f"paired bootstrap over test examples (seeds pooled) on {m.display}: difference "
                 f"{_fmt(metric, diff, sign=True)}{unit}{better}, p = {p:.4f} -> "
                 f"{'significant' if p < 0.05 else 'not significant'} at 0.05")
    return "\n".join(lines)


def _main_metric(record, protocol: str) -> str:
    result = record.protocols.get(protocol)
    return result.main if result is not None else "accuracy"


def _fmt(metric: str, value: float, sign: bool = False) -> str:
    shown = metrics.shown(metric, value)
    digits = 2 if metrics.METRICS[metric].percent else 4
    return f"{shown:+.{digits}f}" if sign else f"{shown:.{digits}f}"


def _accuracy_report(task, a, b, protocol, variant, seeds, preds_a, preds_b, gold) -> str:
    """Accuracy: McNemar per seed, and the per-example bootstrap with seeds pooled (as before metrics)."""
    lines = [f"{task}: {a} vs {b}, protocol {protocol}, variant {variant}, seeds {seeds}",
             "seed  acc_A   acc_B   only_A_right  only_B_right  McNemar_p"]
    correct_a, correct_b = [], []
    for s, pa, pb in zip(seeds, preds_a, preds_b, strict=True):
        p, only_a, only_b = stats.mcnemar_p(pa, pb, gold)
        correct_a.append(pa == gold)
        correct_b.append(pb == gold)
        lines.append(f"{s:<5} {100 * np.mean(pa == gold):6.2f}  {100 * np.mean(pb == gold):6.2f}  "
                     f"{only_a:>12}  {only_b:>12}  {p:9.4f}")
    p = stats.paired_bootstrap_p(np.array(correct_a), np.array(correct_b))
    diff = 100 * (np.mean(correct_a) - np.mean(correct_b))
    lines.append(f"paired bootstrap over test examples (seeds pooled): difference {diff:+.2f} points, p = {p:.4f}"
                 f" -> {'significant' if p < 0.05 else 'not significant'} at 0.05")
    return "\n".join(lines)
