"""The cost table (`harness table --cost`): per (task, model, variant), what was trained and the mean over seeds of
memory, time, energy and emissions, as the records hold them (measured by harness/finetune/energy.py); and per search
(`harness tune`), the total its candidates cost."""
from __future__ import annotations

from harness.errors import UserError

COLUMNS = ("task", "model", "variant", "method", "seeds", "trainable", "total", "peak memory GiB", "train s",
           "energy kWh", "emissions kg CO2eq")
# A search's cost (`harness tune`): totals over its candidates' runs (harness/record/search.py SearchCost).
SEARCH_COLUMNS = ("task", "model", "base variant", "grid", "candidates", "runs", "train s", "eval s", "energy kWh",
                  "emissions kg CO2eq")


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


def search_rows(searches) -> list[dict]:
    """One row per search: what its candidates cost in total (the final runs are in cost_rows, as any run)."""
    from harness.record.search import describe_grid

    return [{"task": s.task, "model": s.model, "base variant": s.base_variant, "grid": describe_grid(s.grid),
             "candidates": len(s.candidates), "runs": s.cost.runs, "train s": s.cost.train_s, "eval s": s.cost.eval_s,
             "energy kWh": s.cost.energy_kwh, "emissions kg CO2eq": s.cost.emissions_kg}
            for s in sorted(searches, key=lambda s: (s.task, s.model, s.base_variant))]


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


def _markdown_table(rows: list[dict], columns: tuple) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]


def to_markdown(rows: list[dict], searches: list[dict] | None = None) -> str:
    text = "\n".join(_markdown_table(rows, COLUMNS)) + \
        "\n\nMeans over seeds. Peak memory: CUDA max allocated, or the process's peak RSS on CPU. Energy and " \
        "emissions: codecarbon, offline, for the country in each record (– where codecarbon was not installed).\n"
    if searches:
        text += ("\n### Searches (`harness tune`)\n\n" + "\n".join(_markdown_table(searches, SEARCH_COLUMNS)) +
                 "\n\nTotals over each search's candidate runs (one per candidate and search seed; pruned and failed "
                 "ones included): what choosing each cell's setting on validation cost, on top of its final runs "
                 "(the rows above).\n")
    return text


EXTENSIONS = {"markdown": "md", "csv": "csv", "json": "json"}


def render(rows: list[dict], fmt: str, searches: list[dict] | None = None) -> str:
    """The cost table as markdown, csv or json; searches (search_rows): the searches' totals, a second table in
    markdown, rows with "kind": "search" in csv and json (the others "kind": "runs")."""
    import json

    if fmt not in EXTENSIONS:
        raise UserError(f"the cost table comes as markdown, csv or json, not {fmt}")
    if fmt == "markdown":
        return to_markdown(rows, searches)
    if searches:
        rows = [{"kind": "runs", **r} for r in rows] + [{"kind": "search", **r} for r in searches]
    if fmt == "json":
        return json.dumps(rows, indent=1, ensure_ascii=False) + "\n"
    return to_csv(rows)


def to_csv(rows: list[dict]) -> str:
    import csv
    import io

    out = io.StringIO()
    names = list(dict.fromkeys(k for row in rows for k in row)) if rows else list(COLUMNS)
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
