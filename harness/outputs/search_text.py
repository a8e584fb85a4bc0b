"""A search record (harness/record/search.py) as text: the summary `harness tune` prints, and the one line per
cell that the tuned table's legend and the report give."""
from __future__ import annotations

from harness import metrics
from harness.record.search import describe_grid as _grid
from harness.record.search import describe_point as _point


def _how(record) -> str:
    seeds = len(record.search_seeds)
    sampler = "every point" if record.sampler == "grid" else f"{record.trials} TPE trials"
    return (f"grid {_grid(record.grid)} ({sampler}, {seeds} search seed{'s' if seeds > 1 else ''}"
            f"{', pruned' if record.prune else ''})")


def search_line(record) -> str:
    """One cell's search in a line: what was searched and what was chosen, on validation."""
    metric = metrics.METRICS[record.metric].display
    head = f"{record.model} on {record.task}: {_how(record)}"
    if record.choice is None:
        return f"{head}: no candidate completed, nothing chosen"
    return f"{head}: chose {_point(record.choice.settings)} (validation {metric} {record.choice.mean:.4f})"


def summary(record, final_records: list) -> str:
    """What `harness tune` prints: every candidate's validation score, the choice and why, the final runs, the
    search's cost."""
    metric = metrics.METRICS[record.metric].display
    lines = [f"{record.task}/{record.model} (variant {record.base_variant}): {_how(record)}, scored on validation "
             f"{metric} only"]
    for c in record.candidates:
        chosen = record.choice is not None and c.variant == record.choice.variant
        score = f"{c.mean:.4f}" if c.mean is not None else c.state
        lines.append(f"  {_point(c.settings):<40} {score}{'  <- chosen' if chosen else ''}"
                     f"{f'  ({c.reason})' if c.reason and not chosen else ''}")
    if record.choice is None:
        lines.append("nothing chosen: no candidate completed")
    else:
        done = [r for r in final_records if r.status == "complete"]
        lines.append(f"chosen: {_point(record.choice.settings)}: {record.choice.why}")
        lines.append(f"final runs: seeds {', '.join(map(str, record.final_seeds))} in variant "
                     f"{record.choice.variant} ({len(done)} complete); `harness table --protocol tuned` shows them")
    cost = record.cost
    energy = f", {cost.energy_kwh:.3g} kWh" if cost.energy_kwh is not None else ""
    lines.append(f"search cost: {cost.runs} runs, {cost.train_s:.0f} s training + {cost.eval_s:.0f} s evaluation"
                 f"{energy}")
    return "\n".join(lines)


TUNED_RULE = ("Tuned: each cell at the setting its search chose on validation only (the task's main metric, mean over "
              "the search seeds, at the epoch picked on validation; test never read in the choice); the figures are "
              "the test scores of other seeds run at that setting (the final seeds), epoch picked on validation.")


def tuned_note(cells, variant: str) -> str:
    """The tuned table's note under its legend: the rule, then per cell what was searched and chosen, and the
    cells shown as "–"."""
    lines = [TUNED_RULE]
    lines += [f"- {search_line(s)}." for s in sorted(cells.searches_of(variant), key=lambda s: (s.task, s.model))]
    missing = cells.missing_of(variant)
    lines += [f"- {m.model} on {m.task}: – ({m.why})." for m in missing]
    if missing:
        lines.append(f"A cell shown – has no tuned figure (never the default recipe's): `harness tune --task T "
                     f"--model M` with the settings of variant `{variant}` fills it.")
    return "\n".join(lines)
