"""What a run costs in energy and emissions, measured through codecarbon (offline) while it trains.

codecarbon's OfflineEmissionsTracker takes the country of the grid as a setting (no location lookup) and
is given no output method, endpoint or API token, so it writes no file and opens no connection. It
measures this process (tracking mode "process": on a shared machine, not the neighbours' load) and, on
CUDA, the GPU this process uses. codecarbon is optional (extra `cost`): without it the record says so
and carries no energy figures.
"""
from __future__ import annotations

import importlib.util
import logging

from harness.errors import UserError


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
    Cost (the tracker stops however the block ends)."""

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

    def stop(self):
        from harness.record.schema import Cost

        if self.unavailable:
            return Cost(country=self.country, tracker=None, unavailable=self.unavailable)
        self._tracker.stop()
        data = getattr(self._tracker, "final_emissions_data", None)
        if data is None:  # codecarbon logs and swallows its own errors
            return Cost(country=self.country, tracker=None, unavailable="codecarbon failed to measure (see its log)")
        return Cost(country=self.country, tracker=f"codecarbon {data.codecarbon_version} offline, tracking mode "
                                                  f"{data.tracking_mode}",
                    energy_kwh=data.energy_consumed, emissions_kg=data.emissions, cpu_energy_kwh=data.cpu_energy,
                    gpu_energy_kwh=data.gpu_energy, ram_energy_kwh=data.ram_energy, duration_s=data.duration)


SUMMED = ("energy_kwh", "emissions_kg", "cpu_energy_kwh", "gpu_energy_kwh", "ram_energy_kwh")


def combine_ranks(cost, all_sum):
    """The whole run's figures from every process's (each process of a data-parallel or sharded run measures
    itself); all_sum adds a list of floats over the processes (distributed.all_sum). Every process calls it."""
    import dataclasses

    measured = cost.energy_kwh is not None
    flags = all_sum([0.0 if measured else 1.0])
    if flags[0]:  # some process has no figures: no sum (the total would be too low)
        return dataclasses.replace(cost, **{k: None for k in SUMMED}, unavailable=cost.unavailable or
                                   "another process could not measure")
    keys = [k for k in SUMMED if getattr(cost, k) is not None]
    sums = all_sum([getattr(cost, k) for k in keys])
    return dataclasses.replace(cost, **dict(zip(keys, sums, strict=True)))
