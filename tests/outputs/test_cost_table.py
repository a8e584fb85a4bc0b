"""The cost table: means over seeds, older records read."""
from harness.outputs import cost_table


def test_cost_rows_average_over_seeds_and_read_older_records():
    from types import SimpleNamespace

    from harness.record.schema import Adaptation, Cost, PeakMemory

    def rec(seed, energy, peak, adaptation=True):
        return SimpleNamespace(
            task=SimpleNamespace(name="t"), model=SimpleNamespace(name="m", parameters=10), variant="default",
            adaptation=Adaptation(method="full", trainable_parameters=10, total_parameters=10, base_parameters=10,
                                  gradient_checkpointing=False) if adaptation else None,
            peak_memory=PeakMemory(bytes=peak, kind="process peak RSS"), timings=SimpleNamespace(train_s=2.0 * seed),
            cost=Cost(country="DEU", tracker="codecarbon", energy_kwh=energy) if energy else None)

    (row,) = cost_table.cost_rows([rec(1, 1.0, 2**30), rec(2, 3.0, 3 * 2**30)])
    assert row["seeds"] == 2 and row["energy kWh"] == 2.0 and row["peak memory GiB"] == 2.0
    assert row["train s"] == 3.0 and row["emissions kg CO2eq"] is None
    # a record from before the cost fields: full fine-tuning, its parameters, no energy
    (row,) = cost_table.cost_rows([rec(1, None, 2**30, adaptation=False)])
    assert (row["method"], row["trainable"], row["energy kWh"]) == ("full", 10, None)
