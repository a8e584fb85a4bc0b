"""The tuned protocol's cells, in one place for table, compare, plot, report and export.

For each (task, model) with a search record (`harness tune`, harness/record/search.py): the complete records of
the chosen setting's variant in the ordinary results tree (the final seeds, and any other seed run at that
setting; never a search seed, whose run took part in the choice), each relabelled to the search's base variant
with one protocol, "tuned", holding its clean result: test at the epoch picked on validation, at the setting
picked on validation. Cells of the base variant with records but no search are listed as missing (shown "–"),
never filled with the default recipe's figure. Pure functions over records.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from harness.record.protocols import TUNED


@dataclass
class Missing:
    variant: str  # the base variant (the tuned table's section)
    task: str
    model: str
    why: str  # "no search", or what its search lacks


@dataclass
class TunedCells:
    records: list  # relabelled copies: variant = the base variant, protocols = {"tuned": the clean result}
    paths: list  # where each was read (None where not given)
    searches: list  # the search records behind them, one per (base variant, task, model)
    missing: list[Missing] = field(default_factory=list)

    def searches_of(self, variant: str) -> list:
        return [s for s in self.searches if s.base_variant == variant]

    def missing_of(self, variant: str) -> list[Missing]:
        return [m for m in self.missing if m.variant == variant]


def relabel(record, variant: str):
    """A copy of a run record as a tuned cell's seed: the base variant, and only the tuned protocol (its clean
    result), so that no other protocol's figure is shown under the base variant's name."""
    return dataclasses.replace(record, variant=variant, protocols={TUNED: record.protocols["clean"]})


def tuned_cells(records: list, searches: list, paths: list | None = None) -> TunedCells:
    """records: complete run records of the ordinary results tree (paths: where each was read); searches: search
    records. Returns the tuned cells' records and what is missing."""
    paths = paths if paths is not None else [None] * len(records)
    keyed = {(s.base_variant, s.task, s.model): s for s in searches}
    cells = TunedCells(records=[], paths=[], searches=list(keyed.values()))
    for (variant, task, model), search in sorted(keyed.items()):
        if search.choice is None:
            cells.missing.append(Missing(variant, task, model, "its search chose nothing: every candidate was pruned "
                                                               "or failed"))
            continue
        chosen = [(r, p) for r, p in zip(records, paths, strict=True)
                  if r.status == "complete" and (r.task.name, r.model.name) == (task, model)
                  and r.variant == search.choice.variant and r.seed not in search.search_seeds
                  and r.protocols.get("clean") is not None]
        if not chosen:
            cells.missing.append(Missing(variant, task, model, f"searched, but no final run yet in variant "
                                                               f"{search.choice.variant}"))
        for r, p in sorted(chosen, key=lambda rp: rp[0].seed):
            cells.records.append(relabel(r, variant))
            cells.paths.append(p)
    seen = set()
    for r in records:
        key = (r.variant, r.task.name, r.model.name)
        if r.variant in {v for v, _, _ in keyed} and key not in keyed and key not in seen:
            seen.add(key)
            cells.missing.append(Missing(*key, "no search"))
    return cells
