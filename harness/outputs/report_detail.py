"""The report's detail view of one cell (harness/outputs/report.py): every seed's scores under each protocol and
the epoch each picked, the per-epoch curves, the run settings (changed ones flagged), cost and provenance, and
each record's path relative to the results folder; and the cell text both views share."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from harness.aggregate import table as tb
from harness.outputs import plot
from harness.record.store import record_path
from harness.redact import shared_path, shared_source


@dataclass
class Detail:
    id: str
    model: str
    task: str
    scores: list  # [(protocol, metric label, "mean ± half (n)")]
    seeds: list  # per seed: dict
    curves: object  # Markup
    settings: list  # [(key, value, overridden)]
    cost: list  # per seed: dict
    provenance: list  # [(key, value)]



def cell_text(cell: tb.Score) -> tuple[str, str]:
    if math.isnan(cell.mean):
        return "n/a", ""
    return f"{cell.mean:.2f}", ("" if cell.half is None else f"± {cell.half:.2f}")


def detail_id(section: str, model: str, task: str) -> str:
    return f"{section}-d-" + re.sub(r"[^A-Za-z0-9_-]+", "_", f"{model}--{task}")


def _values(values) -> str:
    """One value, or 'a | b' where the seeds' records differ."""
    distinct = []
    for v in values:
        if v not in distinct:
            distinct.append(v)
    return " | ".join(text_of(v) for v in distinct)


def _merged(dicts: list[dict]) -> dict:
    """key -> _values of that key over the dicts."""
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return {k: _values(d[k] for d in dicts if k in d) for k in keys}


def text_of(value) -> str:
    """A value as the detail view shows it: – for none, floats short."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _seconds(s) -> str:
    if s is None:
        return "–"
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _bytes(n) -> str:
    return "–" if n is None else f"{n / 2 ** 30:.2f} GiB"


def build_detail(section_id: str, records: list, tables: dict, results: Path, model_display: str,
                 task_display: str, views: dict, protocols: dict) -> Detail:
    """The detail view of one cell (its records, every seed): tables: (protocol, view) -> Table of the section;
    views and protocols: the page's, by key, for the labels and the per-seed columns."""
    from markupsafe import Markup

    records = sorted(records, key=lambda r: r.seed)
    first = records[0]
    model, task = first.model.name, first.task.name
    scores = []
    for (protocol, metric), table in tables.items():
        row = next((r for r in table.rows if r.model == model), None)
        cell = row.cells.get(task) if row else None
        if cell is not None:
            mean, half = cell_text(cell)
            scores.append((protocol, views[metric], f"{mean} {half}".strip(), cell.n))
    seeds = []
    for r in records:
        # Relative to where the results folder is: the page names no path of the machine.
        entry = {"seed": r.seed, "path": record_path(Path(shared_path(results)), task, model, r.variant,
                                                     r.seed).as_posix(), "scores": []}
        for protocol in protocols:
            result = r.protocols.get(protocol)
            for metric in tb.METRICS:
                value = tb.record_score(r, protocol, metric)
                entry["scores"].append("–" if value is None else f"{value:.2f}")
            entry["scores"].append("–" if result is None else str(result.epoch))
        seeds.append(entry)
    overridden = set().union(*(r.overrides for r in records))
    settings = [(k, v, k in overridden) for k, v in _merged([r.hyperparameters for r in records]).items()]
    settings += [("limit (examples per split)", _values(r.limit for r in records), False)]
    settings += [(f"{k} examples", v, False) for k, v in _merged([r.dataset_sizes for r in records]).items()]
    cost = [{"seed": r.seed, "total": _seconds(r.timings and r.timings.total_s),
             "train": _seconds(r.timings and r.timings.train_s), "eval": _seconds(r.timings and r.timings.eval_s),
             "steps": sum(f.steps for f in r.fits), "tokens": f"{r.tokens.train_real if r.tokens else 0:,}",
             "padding": text_of(r.tokens and r.tokens.padding_efficiency),
             "memory": (f"{_bytes(r.peak_memory.bytes)} ({r.peak_memory.kind})" if r.peak_memory else "–"),
             "device": r.device or "–",
             "trained": (f"{r.adaptation.method}: {r.adaptation.trainable_parameters:,} of "
                         f"{r.adaptation.total_parameters:,}") if r.adaptation else "–",
             "energy": (f"{r.cost.energy_kwh:.3g} kWh, {r.cost.emissions_kg:.3g} kg CO2eq ({r.cost.country})"
                        if r.cost and r.cost.energy_kwh is not None else "–")} for r in records]
    git = [f"{r.harness.version} @ {r.harness.git_commit or '–'}" + (" (dirty)" if r.harness.git_dirty else "")
           for r in records]
    provenance = [("task", _values(f"{r.task.hub_id} @ {r.task.revision_resolved or '–'}" for r in records)),
                  ("task source", _values(r.task.source if r.task.source in ("hub", "embedded", None) else "mirror"
                                          for r in records)),
                  ("model source", _values(shared_source(r.model.source, r.model.weights_fingerprint)
                                           for r in records)),
                  ("model revision", _values(r.model.revision_resolved for r in records)),
                  ("model family", _values(r.model.family for r in records)),
                  ("parameters", _values(r.model.parameters for r in records)),
                  ("precision", _values(r.precision for r in records)),
                  ("harness", _values(git)),
                  ("created", _values(r.created_at for r in records))]
    provenance += [(name, v) for name, v in _merged([r.packages for r in records]).items()]
    curves = Markup(plot.to_svg(plot.curves_figure(records))) if any(r.fits for r in records) else None
    return Detail(id=detail_id(section_id, model, task), model=model_display, task=task_display, scores=scores,
                  seeds=seeds, curves=curves, settings=settings, cost=cost, provenance=provenance)
