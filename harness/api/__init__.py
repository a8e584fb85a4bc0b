"""The Python API: what the `harness` command does, from a script or a notebook. The command line
(harness/cli/) is argument parsing plus calls to these functions. May import every stage below it (registry ...
grid); only cli/ imports it.

    import harness
    records = harness.run("assin2", "minilm-l6", seeds=3, limit=200, epochs=1, mirror="../shared/data/hub")
    print(harness.table(suite="ttl"))              # the text `harness table` prints
    harness.tune("assin2", "minilm-l6", limit=200)  # each model at its own best learning rate (on validation)
    print(harness.table(protocol="tuned"))
    df = harness.results.load("results")           # one row per record x protocol x metric

Bad input raises harness.errors.UserError: one line that says what is wrong and what to do. Progress and
notices go to stderr, as on the command line; heavy libraries load only inside the functions that need them.
"""
from harness.api.common import results_folder
from harness.api.runs import plan_run, run, run_planned, sweep
from harness.api.tuning import TuneResult, tune
from harness.api.views import compare, complete_records, cost_table, export, plot, report, table

__all__ = ["TuneResult", "compare", "complete_records", "cost_table", "export", "plan_run", "plot", "report",
           "results_folder", "run", "run_planned", "sweep", "table", "tune"]
