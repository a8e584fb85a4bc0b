"""harness compare: is model A better than model B on one task? Two questions, two levels.

- Procedure level (the headline): does A's fine-tuning beat B's? Another seed gives another model,
  and another test set other numbers, so the difference of the mean scores over seeds is tested
  with both sources of variance (stats.seed_aware_test): run to run, and test example to test
  example. Runs of A and B need not share seeds. It needs at least 2 seeds per model.
- Checkpoint level: do these two particular checkpoints (A and B trained with the same seed) differ
  on these test examples? An exact McNemar test per seed, on the examples where they disagree. It
  says nothing about what another seed would give.

Both levels use the task's main metric (the one that picked the epoch: accuracy, macro-F1, Pearson, ...);
McNemar, a test of who is right on each example, is shown for classification tasks only.

One comparison per (variant, precision) that both models have, unless --variant picks one.
"""
from __future__ import annotations

import numpy as np

from harness import metrics
from harness.aggregate import groups, stats
from harness.errors import UserError
from harness.record.predictions import decode_predictions


def _predictions(record, protocol: str) -> np.ndarray:
    result = record.protocols.get(protocol)
    if result is None:
        raise UserError(f"{record.task.name}/{record.model.name} seed {record.seed} ({record.variant}) has no "
                        f"{protocol} result: pick the other --protocol")
    return decode_predictions(record.fits[result.fit].epochs[result.epoch - 1].test_predictions, record.task.type)


def _main_metric(records, protocol: str) -> str:
    mains = {r.protocols[protocol].main for r in records if r.protocols.get(protocol) is not None}
    if len(mains) > 1:
        raise UserError(f"the records picked their epochs by different metrics ({', '.join(sorted(mains))}): "
                        f"the task's main metric changed between runs; rerun one side")
    return mains.pop() if mains else "accuracy"


def _fmt(metric: str, value: float, sign: bool = False) -> str:
    digits = 2 if metrics.METRICS[metric].percent else 4
    return f"{metrics.shown(metric, value):{'+' if sign else ''}.{digits}f}"


def compare_models(records, task: str, a: str, b: str, protocol: str, variant: str | None = None,
                   metric: str | None = None) -> str:
    """The text of `harness compare`: one section per (variant, precision) both models have. metric: the one
    tested (default: the task's main metric, as the records name it)."""
    on_task = [r for r in records if r.status == "complete" and r.task.name == task]
    if not on_task:
        tasks = sorted({r.task.name for r in records if r.status == "complete"})
        raise UserError(f"no complete records for task '{task}' (tasks with records: {', '.join(tasks) or 'none'})")
    by_model = {m: [r for r in on_task if r.model.name == m] for m in (a, b)}
    for m, recs in by_model.items():
        if not recs:
            models = sorted({r.model.name for r in on_task})
            raise UserError(f"no records for {task}/{m} (models with records on {task}: {', '.join(models)})")
    have = {m: {(g.variant, g.precision): g for g in groups.groups(recs)} for m, recs in by_model.items()}
    both = [k for k in have[a] if k in have[b] and (variant is None or k[0] == variant)]
    if not both:
        asked = f" in variant '{variant}'" if variant else ""
        raise UserError(f"{a} and {b} have no records{asked} on {task} of the same variant and precision: "
                        f"{a}: {groups.listing(by_model[a])}; {b}: {groups.listing(by_model[b])}")
    task_type = on_task[0].task.type
    if metric is not None and not metrics.fits(metric, task_type):
        fitting = [n for n, spec in metrics.METRICS.items() if spec.task_type == task_type]
        raise UserError(f"--metric {metric} does not fit {task}, a {task_type} task (valid: {', '.join(fitting)})")
    sections = [compare_groups(have[a][k], have[b][k], task, a, b, protocol, metric) for k in both]
    return "\n\n".join(sections)


def compare_groups(group_a, group_b, task: str, a: str, b: str, protocol: str, metric: str | None = None) -> str:
    """Both levels for two groups (groups.Group) of records on one task. `harness compare` pairs groups of the same
    variant and precision; benchmarks/cpu_precision.py pairs one model's fp32 and bf16 groups."""
    runs_a = {r.seed: r for r in group_a.records}
    runs_b = {r.seed: r for r in group_b.records}
    first = next(iter(runs_a.values()))
    gold = decode_predictions(first.test_labels, first.task.type)
    for name, runs in ((a, runs_a), (b, runs_b)):
        for s, r in runs.items():
            labels = decode_predictions(r.test_labels, r.task.type)
            if len(labels) != len(gold) or not np.array_equal(labels, gold):
                raise UserError(f"{name} seed {s} was tested on other examples than {a} seed {min(runs_a)} "
                                f"(different --limit or data): a paired comparison needs the same test set")
    seeds_a, seeds_b = sorted(runs_a), sorted(runs_b)
    pred_a = {s: _predictions(runs_a[s], protocol) for s in seeds_a}
    pred_b = {s: _predictions(runs_b[s], protocol) for s in seeds_b}
    metric = metric or _main_metric([*group_a.records, *group_b.records], protocol)
    m = metrics.METRICS[metric]
    precision = group_a.label if group_a.label == group_b.label else f"A {group_a.label}, B {group_b.label}"
    lines = [f"{task}: A = {a} vs B = {b}; protocol {protocol}, variant {group_a.variant}, precision "
             f"{precision}; {len(gold)} test examples; {metric}{' in %' if m.percent else ''}",
             "",
             "Procedure level: does A's fine-tuning beat B's?",
             f"  (seed-aware: the difference of the mean {m.display} over seeds, tested with both the variance from "
             "seed to seed and from test example to test example)"]
    lines += _procedure_lines(pred_a, pred_b, gold, metric)
    lines += ["", "Checkpoint level: do these two checkpoints (A and B trained with the same seed) differ on these "
              "test examples?"]
    if first.task.type == "classification":
        lines += ["  (exact McNemar test on the examples where they disagree; says nothing about another seed)"]
    else:
        lines += ["  (no per-example test for a regression task: each seed's score only)"]
    lines += _checkpoint_lines(pred_a, pred_b, gold, metric, first.task.type == "classification")
    return "\n".join(lines)


def _procedure_lines(pred_a: dict, pred_b: dict, gold, metric: str) -> list[str]:
    m = metrics.METRICS[metric]

    def runs(preds: dict) -> str:
        return (f"{'seed' if len(preds) == 1 else 'seeds'} {', '.join(map(str, preds))}: {m.display} "
                f"{', '.join(_fmt(metric, m.fn(p, gold)) for p in preds.values())}")

    lines = [f"  A: {runs(pred_a)}", f"  B: {runs(pred_b)}"]
    result = stats.seed_aware_test(np.stack(list(pred_a.values())), np.stack(list(pred_b.values())), gold,
                                   stats.scorer(metric))
    if result is None:
        return lines + ["  not possible: it needs at least 2 seeds of each model (one run cannot show how much another "
                        "seed would change the score); only the checkpoint-level test below is possible. Run more "
                        "seeds (harness run ... --seeds 3)."]
    scale = 100.0 if m.percent else 1.0
    d, half = result.difference, result.half
    a_better = d > 0 if m.higher_is_better else d < 0
    verdict = ("not significant" if result.p >= stats.ALPHA
               else f"significant: {'A' if a_better else 'B'} is better")
    units = " points" if m.percent else ""
    sq = "points²" if m.percent else "squared units"
    return lines + [
        f"  mean A {_fmt(metric, result.mean_a)}, mean B {_fmt(metric, result.mean_b)}: difference A - B "
        f"{_fmt(metric, d, sign=True)}{units}, 95% CI [{_fmt(metric, d - half, sign=True)}, "
        f"{_fmt(metric, d + half, sign=True)}]" + ("" if m.higher_is_better else " (lower is better)"),
        f"  variance of the difference ({sq}): seeds {scale ** 2 * result.var_seeds:.3g} + test examples "
        f"{scale ** 2 * result.var_examples:.3g}; t-test with {result.dof:.1f} degrees of freedom (Satterthwaite)",
        f"  p = {result.p:.4f} -> {verdict} at {stats.ALPHA}"]


def _checkpoint_lines(pred_a: dict, pred_b: dict, gold, metric: str, classification: bool) -> list[str]:
    shared = sorted(set(pred_a) & set(pred_b))
    if not shared:
        return ["  no seed in common: run the same seeds for both models to compare checkpoints"]
    m = metrics.METRICS[metric]
    width = max(6, len(m.display) + 2)
    head = f"  seed  {m.display + '_A':>{width}}  {m.display + '_B':>{width}}"
    lines = [head + ("  only_A_right  only_B_right  McNemar_p" if classification else "")]
    for s in shared:
        score_a, score_b = _fmt(metric, m.fn(pred_a[s], gold)), _fmt(metric, m.fn(pred_b[s], gold))
        line = f"  {s:<5} {score_a:>{width}}  {score_b:>{width}}"
        if classification:
            p, only_a, only_b = stats.mcnemar_p(pred_a[s], pred_b[s], gold)
            line += f"  {only_a:>12}  {only_b:>12}  {p:9.4f}"
        lines.append(line)
    return lines
