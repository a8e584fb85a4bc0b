"""What a run cost: energy and emissions through codecarbon (offline), and the cost table.

codecarbon's OfflineEmissionsTracker takes the country of the grid as a setting (no location lookup) and
is given no output method, endpoint or API token, so it writes no file and opens no connection. It
measures this process (tracking mode "process": on a shared machine, not the neighbours' load) and, on
CUDA, the GPU this process uses. codecarbon is optional (extra `cost`): without it the record says so
and carries no energy figures.
"""
from __future__ import annotations

import importlib.util
import logging

from .errors import UserError


def check_country(code: str) -> None:
    """Fail before any work on a country codecarbon has no energy mix for."""
    if importlib.util.find_spec("codecarbon") is None:
        return
    from codecarbon.input import DataSource

    mixes = DataSource().get_global_energy_mix_data()
    if code not in mixes:
        raise UserError(f"--emissions-country {code}: not a country codecarbon knows (ISO 3166 alpha-3, e.g. BRA, "
                        f"DEU, USA, PRT)")


class Tracker:
    """Energy and emissions of what runs inside `with Tracker(...) as t:`; then t.result is the record's
    `cost` dict (the tracker stops however the block ends)."""

    def __init__(self, country: str, device):
        self.country = country
        self.device = device
        self._tracker = None
        self.unavailable = None if importlib.util.find_spec("codecarbon") else \
            "codecarbon is not installed (pip install 'poeta-harness[cost]')"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.result = self.stop()
        return False

    def start(self) -> None:
        if self.unavailable:
            return
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        gpu = [self.device.index or 0] if self.device.type == "cuda" else None
        # Every network-capable setting is given explicitly, so no config file or environment variable can
        # switch one on.
        self._tracker = OfflineEmissionsTracker(
            country_iso_code=self.country, project_name="poeta-harness", output_methods=[], emissions_endpoint=None,
            electricitymaps_api_token=None, tracking_mode="process", gpu_ids=gpu, log_level="error",
            allow_multiple_runs=True)
        self._tracker.start()

    def stop(self) -> dict:
        if self.unavailable:
            return {"tracker": None, "unavailable": self.unavailable, "energy_kwh": None, "emissions_kg": None,
                    "country": self.country}
        self._tracker.stop()
        data = getattr(self._tracker, "final_emissions_data", None)
        if data is None:  # codecarbon logs and swallows its own errors
            return {"tracker": "codecarbon", "unavailable": "codecarbon failed to measure (see its log)",
                    "energy_kwh": None, "emissions_kg": None, "country": self.country}
        return {"tracker": f"codecarbon {data.codecarbon_version} offline, tracking mode {data.tracking_mode}",
                "unavailable": None, "energy_kwh": data.energy_consumed, "emissions_kg": data.emissions,
                "country": self.country, "cpu_energy_kwh": data.cpu_energy, "gpu_energy_kwh": data.gpu_energy,
                "ram_energy_kwh": data.ram_energy, "duration_s": data.duration}


def combine_ranks(cost: dict, sums: list[float]) -> dict:
    """The whole run's figures from every process's (data-parallel runs measure each process)."""
    keys = [k for k in ("energy_kwh", "emissions_kg", "cpu_energy_kwh", "gpu_energy_kwh", "ram_energy_kwh")
            if cost.get(k) is not None]
    return cost | dict(zip(keys, sums[:len(keys)], strict=True))


def rank_values(cost: dict) -> list[float]:
    return [cost[k] for k in ("energy_kwh", "emissions_kg", "cpu_energy_kwh", "gpu_energy_kwh", "ram_energy_kwh")
            if cost.get(k) is not None]


# ------------------------------------------------------------------ the cost table

COLUMNS = ("task", "model", "variant", "method", "seeds", "trainable", "total", "peak memory GiB", "train s",
           "energy kWh", "emissions kg CO2eq")


def cost_rows(records) -> list[dict]:
    """One row per (task, model, variant): parameters, and the mean over seeds of memory, time, energy."""
    groups: dict[tuple, list] = {}
    for r in records:
        groups.setdefault((r.task["name"], r.model["name"], r.variant), []).append(r)
    rows = []
    for (task, model, variant), recs in sorted(groups.items()):
        adaptation = recs[0].adaptation or {}
        rows.append({
            "task": task, "model": model, "variant": variant, "method": adaptation.get("method", "full"),
            "seeds": len(recs),
            "trainable": adaptation.get("trainable_parameters", recs[0].model.get("parameters")),
            "total": adaptation.get("total_parameters", recs[0].model.get("parameters")),
            "peak memory GiB": _mean([r.peak_memory.get("bytes") for r in recs], scale=2**-30),
            "train s": _mean([r.timings.get("train_s") for r in recs]),
            "energy kWh": _mean([(r.cost or {}).get("energy_kwh") for r in recs]),
            "emissions kg CO2eq": _mean([(r.cost or {}).get("emissions_kg") for r in recs]),
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


def to_csv(rows: list[dict]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
