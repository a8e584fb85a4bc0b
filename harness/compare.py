"""harness compare: is model A better than model B on one task? Two questions, two levels.

- Procedure level (the headline): does A's fine-tuning beat B's? Another seed gives another model,
  and another test set other numbers, so the difference of the mean scores over seeds is tested
  with both sources of variance (stats.seed_aware_test): run to run, and test example to test
  example. Runs of A and B need not share seeds. It needs at least 2 seeds per model.
- Checkpoint level: do these two particular checkpoints (A and B trained with the same seed) differ
  on these test examples? An exact McNemar test per seed, on the examples where they disagree. It
  says nothing about what another seed would give.

One comparison per (variant, precision) that both models have, unless --variant picks one.
"""
from __future__ import annotations

import numpy as np

from . import selection, stats
from .errors import UserError
from .scores import decode_ids


def _predictions(record, protocol: str) -> np.ndarray:
    result = record.protocols.get(protocol)
    if result is None:
        raise UserError(f"{record.task.name}/{record.model.name} seed {record.seed} ({record.variant}) has no "
                        f"{protocol} result: pick the other --protocol")
    return decode_ids(record.fits[result.fit].epochs[result.epoch - 1].test_predictions)


def compare_models(records, task: str, a: str, b: str, protocol: str, variant: str | None = None) -> str:
    """The text of `harness compare`: one section per (variant, precision) both models have."""
    on_task = [r for r in records if r.status == "complete" and r.task.name == task]
    if not on_task:
        tasks = sorted({r.task.name for r in records if r.status == "complete"})
        raise UserError(f"no complete records for task '{task}' (tasks with records: {', '.join(tasks) or 'none'})")
    by_model = {m: [r for r in on_task if r.model.name == m] for m in (a, b)}
    for m, recs in by_model.items():
        if not recs:
            models = sorted({r.model.name for r in on_task})
            raise UserError(f"no records for {task}/{m} (models with records on {task}: {', '.join(models)})")
    have = {m: {(g.variant, g.precision): g for g in selection.groups(recs)} for m, recs in by_model.items()}
    both = [k for k in have[a] if k in have[b] and (variant is None or k[0] == variant)]
    if not both:
        asked = f" in variant '{variant}'" if variant else ""
        raise UserError(f"{a} and {b} have no records{asked} on {task} of the same variant and precision: "
                        f"{a}: {selection.listing(by_model[a])}; {b}: {selection.listing(by_model[b])}")
    sections = [_compare_group(have[a][k], have[b][k], task, a, b, protocol) for k in both]
    return "\n\n".join(sections)


def _compare_group(group_a, group_b, task: str, a: str, b: str, protocol: str) -> str:
    runs_a = {r.seed: r for r in group_a.records}
    runs_b = {r.seed: r for r in group_b.records}
    gold = decode_ids(next(iter(runs_a.values())).test_labels)
    for name, runs in ((a, runs_a), (b, runs_b)):
        for s, r in runs.items():
            labels = decode_ids(r.test_labels)
            if len(labels) != len(gold) or not np.array_equal(labels, gold):
                raise UserError(f"{name} seed {s} was tested on other examples than {a} seed {min(runs_a)} "
                                f"(different --limit or data): a paired comparison needs the same test set")
    seeds_a, seeds_b = sorted(runs_a), sorted(runs_b)
    pred_a = {s: _predictions(runs_a[s], protocol) for s in seeds_a}
    pred_b = {s: _predictions(runs_b[s], protocol) for s in seeds_b}
    lines = [f"{task}: A = {a} vs B = {b}; protocol {protocol}, variant {group_a.variant}, precision "
             f"{group_a.label}; {len(gold)} test examples; accuracy in %",
             "",
             "Procedure level: does A's fine-tuning beat B's?",
             "  (seed-aware: the difference of the mean accuracies over seeds, tested with both the variance from "
             "seed to seed and from test example to test example)"]
    lines += _procedure_lines(pred_a, pred_b, gold)
    lines += ["",
              "Checkpoint level: do these two checkpoints (A and B trained with the same seed) differ on these test "
              "examples?",
              "  (exact McNemar test on the examples where they disagree; says nothing about another seed)"]
    lines += _checkpoint_lines(pred_a, pred_b, gold)
    return "\n".join(lines)


def _procedure_lines(pred_a: dict, pred_b: dict, gold) -> list[str]:
    def runs(preds: dict) -> str:
        return (f"{'seed' if len(preds) == 1 else 'seeds'} {', '.join(map(str, preds))}: accuracy "
                f"{', '.join(f'{100 * np.mean(p == gold):.2f}' for p in preds.values())}")

    lines = [f"  A: {runs(pred_a)}", f"  B: {runs(pred_b)}"]
    result = stats.seed_aware_test(np.stack(list(pred_a.values())), np.stack(list(pred_b.values())), gold)
    if result is None:
        return lines + ["  not possible: it needs at least 2 seeds of each model (one run cannot show how much another "
                        "seed would change the score); only the checkpoint-level test below is possible. Run more "
                        "seeds (harness run ... --seeds 3)."]
    d, half = 100 * result.difference, 100 * result.half
    verdict = ("not significant" if result.p >= stats.ALPHA
               else f"significant: {'A' if d > 0 else 'B'} is better")
    return lines + [
        f"  mean A {100 * result.mean_a:.2f}, mean B {100 * result.mean_b:.2f}: difference A - B {d:+.2f} points, "
        f"95% CI [{d - half:+.2f}, {d + half:+.2f}]",
        f"  variance of the difference (points²): seeds {1e4 * result.var_seeds:.3f} + test examples "
        f"{1e4 * result.var_examples:.3f}; t-test with {result.dof:.1f} degrees of freedom (Satterthwaite)",
        f"  p = {result.p:.4f} -> {verdict} at {stats.ALPHA}"]


def _checkpoint_lines(pred_a: dict, pred_b: dict, gold) -> list[str]:
    shared = sorted(set(pred_a) & set(pred_b))
    if not shared:
        return ["  no seed in common: run the same seeds for both models to compare checkpoints"]
    lines = ["  seed   acc_A   acc_B  only_A_right  only_B_right  McNemar_p"]
    for s in shared:
        p, only_a, only_b = stats.mcnemar_p(pred_a[s], pred_b[s], gold)
        lines.append(f"  {s:<5} {100 * np.mean(pred_a[s] == gold):6.2f}  {100 * np.mean(pred_b[s] == gold):6.2f}  "
                     f"{only_a:>12}  {only_b:>12}  {p:9.4f}")
    return lines
