"""Energy and emissions through codecarbon, offline, in every record."""
import socket
import sys
import time

import pytest
import torch

from harness.cli.commands import main
from harness.config import RunConfig
from harness.errors import UserError
from harness.finetune import cell, energy
from harness.record.serialize import from_dict
from harness.record.store import read_record
from harness.registry.load import load_tasks, local_model

CPU = torch.device("cpu")


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt is recorded and refused."""
    attempts = []

    def refuse(self, address, *a, **k):
        attempts.append(address)
        raise OSError("network refused in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def _busy(seconds: float) -> None:
    a = torch.rand(300, 300)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a @ a


def test_the_country_sets_the_carbon_intensity_offline(no_network):
    """emissions / energy is the grid's intensity: codecarbon's own figure for the country asked for."""
    from codecarbon.input import DataSource

    mixes = DataSource().get_global_energy_mix_data()
    measured = {}
    for country in ("BRA", "DEU"):
        with energy.Tracker(country, CPU) as tracker:
            _busy(1.0)
        result = tracker.result
        assert result.country == country and result.tracker.startswith("codecarbon")
        assert result.energy_kwh > 0 and result.emissions_kg > 0 and result.unavailable is None
        measured[country] = 1000 * result.emissions_kg / result.energy_kwh  # g CO2eq / kWh
    for country, intensity in measured.items():
        assert intensity == pytest.approx(mixes[country]["carbon_intensity"], rel=1e-3)
    assert measured["BRA"] < measured["DEU"]
    assert no_network == []


def test_without_codecarbon_the_record_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # as if not installed
    with energy.Tracker("DEU", CPU) as tracker:
        pass
    assert tracker.result.energy_kwh is None and "codecarbon is not installed" in tracker.result.unavailable
    energy.check_country("XYZ")  # nothing to check against: no error


def test_unknown_country_is_refused_before_loading(toy_env, tiny_encoder):
    with pytest.raises(UserError, match="XYZ: not a country codecarbon knows"):
        cell.run_cell(load_tasks()["toy"], local_model(tiny_encoder), RunConfig(emissions_country="XYZ"),
                         seed=1, mirror=str(toy_env["mirror"]), log=lambda m: None)


def test_cost_fields_in_every_record_and_the_cost_table(toy_env, tiny_encoder, no_network, capsys):
    import json

    results = toy_env["results"]
    base = ["run", "--task", "toy", "--model", str(tiny_encoder), "--mirror", str(toy_env["mirror"]),
            "--results", str(results), "--epochs", "1", "--limit", "16"]
    assert main(base) == 0
    assert main(base + ["--peft", "lora", "--lora-r", "2", "--emissions-country", "BRA"]) == 0
    assert no_network == []
    full_path, lora_path = sorted(results.rglob("seed42.json"))  # variants "epochs=1_..." sort before ".._peft=lora"
    full, lora = json.loads(full_path.read_text()), json.loads(lora_path.read_text())
    assert "peft=lora" in lora["variant"] and "peft" not in full["variant"]
    for rec in (full, lora):
        assert rec["cost"]["energy_kwh"] > 0 and rec["cost"]["emissions_kg"] > 0
        assert rec["peak_memory"]["bytes"] > 0
    assert (full["cost"]["country"], lora["cost"]["country"]) == ("DEU", "BRA")
    assert full["adaptation"]["method"] == "full" and lora["adaptation"]["method"] == "lora"
    assert full["adaptation"]["trainable_parameters"] == full["adaptation"]["total_parameters"]
    assert lora["adaptation"]["trainable_parameters"] < full["adaptation"]["trainable_parameters"]
    typed = read_record(lora_path)  # the typed schema reads them back
    assert typed.adaptation.lora.r == 2 and typed.cost.country == "BRA" and typed.cost.energy_kwh > 0
    older = dict(full)
    del older["adaptation"], older["cost"]  # a record written before these fields
    assert from_dict(older).adaptation is None and from_dict(older).cost is None

    capsys.readouterr()
    assert main(["table", "--cost", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| toy |")]
    assert len(rows) == 2
    full_row = next(r for r in rows if "| full |" in r)
    lora_row = next(r for r in rows if "| lora |" in r)
    assert f"| {full['adaptation']['trainable_parameters']:,} |" in full_row
    assert f"| {lora['adaptation']['trainable_parameters']:,} |" in lora_row
    assert (results / "table-cost.md").is_file()
    assert main(["table", "--cost", "--format", "json", "--results", str(results)]) == 0
    table = json.loads(capsys.readouterr().out)
    by_method = {r["method"]: r for r in table}
    assert by_method["lora"]["energy kWh"] == pytest.approx(lora["cost"]["energy_kwh"])
    assert by_method["full"]["emissions kg CO2eq"] == pytest.approx(full["cost"]["emissions_kg"])


def test_figures_are_summed_over_processes_only_when_every_process_measured():
    from harness.record.schema import Cost

    two_ranks = lambda values: [2 * v for v in values]  # noqa: E731  (all_sum over two identical processes)
    measured = Cost(country="DEU", tracker="codecarbon", energy_kwh=1.5, emissions_kg=0.5, cpu_energy_kwh=1.0)
    summed = energy.combine_ranks(measured, two_ranks)
    assert (summed.energy_kwh, summed.emissions_kg, summed.cpu_energy_kwh, summed.gpu_energy_kwh) == (3.0, 1.0, 2.0,
                                                                                                      None)
    one_missing = lambda values: [v + 1.0 for v in values]  # noqa: E731  (the other process could not measure)
    assert energy.combine_ranks(measured, one_missing).energy_kwh is None
    assert energy.combine_ranks(measured, lambda v: list(v)) == measured  # one process: unchanged
