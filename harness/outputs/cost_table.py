"""The cost table (`harness table --cost`): per (task, model, variant), what was trained and the mean over seeds of
memory, time, energy and emissions, as the records hold them (measured by harness/finetune/energy.py)."""
from __future__ import annotations

from harness.errors import UserError

COLUMNS = ("task", "model", "variant", "method", "seeds", "trainable", "total", "peak memory GiB", "train s",
           "energy kWh", "emissions kg CO2eq")


def cost_rows(records) -> list[dict]:
    """One row per (task, model, variant): parameters, and the mean over seeds of memory, time, energy.
    Records written before the cost fields show their parameters and memory, and no energy."""
    groups: dict[tuple, list] = {}
    for r in records:
        groups.setdefault((r.task.name, r.model.name, r.variant), []).append(r)
    rows = []
    for (task, model, variant), recs in sorted(groups.items()):
        adaptation = recs[0].adaptation
        rows.append({
            "task": task, "model": model, "variant": variant, "method": adaptation.method if adaptation else "full",
            "seeds": len(recs),
            "trainable": adaptation.trainable_parameters if adaptation else recs[0].model.parameters,
            "total": adaptation.total_parameters if adaptation else recs[0].model.parameters,
            "peak memory GiB": _mean([r.peak_memory and r.peak_memory.bytes for r in recs], scale=2**-30),
            "train s": _mean([r.timings and r.timings.train_s for r in recs]),
            "energy kWh": _mean([r.cost and r.cost.energy_kwh for r in recs]),
            "emissions kg CO2eq": _mean([r.cost and r.cost.emissions_kg for r in recs]),
        })
    return rows


def _mean(values, scale: float = 1.0):
    values = [v for v in values if v is not None]
    return scale * sum(values) / len(values) if values else None


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def to_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n\nMeans over seeds. Peak memory: CUDA max allocated, or the process's peak RSS on " \
                              "CPU. Energy and emissions: codecarbon, offline, for the country in each record " \
                              "(– where codecarbon was not installed).\n"


EXTENSIONS = {"markdown": "md", "csv": "csv", "json": "json"}


def render(rows: list[dict], fmt: str) -> str:
    """The cost table as markdown, csv or json."""
    import json

    if fmt not in EXTENSIONS:
        raise UserError(f"the cost table comes as markdown, csv or json, not {fmt}")
    if fmt == "json":
        return json.dumps(rows, indent=1, ensure_ascii=False) + "\n"
    return to_markdown(rows) if fmt == "markdown" else to_csv(rows)


def to_csv(rows: list[dict]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
