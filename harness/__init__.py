"""poeta-harness: fine-tune registered models on registered Portuguese tasks, one record per run, and compare
them fairly (tables with seeds, intervals and tests; plots; a report; the Hub's formats).

The folders follow the data flow; a folder may import the base modules and the folders before it, never one
after it (tests/test_layout.py checks this order against the code):

    base modules   errors, config, files, yamlfile, redact, metrics, embedded (data shipped in the package)
    registry/      tasks/*.yaml and models.yaml -> typed specs
    hub/           the hub, a local mirror of it and its lock, prefetch
    data/          a task's splits: load, check, subset; format, tokenize, cache
    record/        the run record: schema, build, JSON, store, variants, provenance, protocols
    model/         loading a model; pad tokens; LoRA; the pooled last layer; PCG64 dropout masks
    finetune/      one cell (cell.py) of one or two fits (fit.py): the one routine for every model
    aggregate/     records -> a DataFrame, table cells and marks, statistics, compare
    outputs/       tables as text and files, plots, the HTML report, the Hub's formats
    grid/          the sweep: the grid of cells, executors (local, SLURM), GPU capacity; the search of
                   `harness tune` (Optuna), its claims and workers
    api/           the Python API: run, sweep, tune, table, compare, plot, report, export (results.py, the
                   DataFrame face, just below it)
    cli/           the `harness` command: argument parsing plus calls to the API

    import harness
    records = harness.run("assin2", "minilm-l6", seeds=3, limit=200, epochs=1)
    print(harness.table(suite="ttl"))
"""

__version__ = "0.1.0"

from harness import results  # noqa: E402  (harness.results: the DataFrame face)
from harness.api import compare, export, plot, report, run, sweep, table, tune  # noqa: E402

__all__ = ["compare", "export", "plot", "report", "results", "run", "sweep", "table", "tune", "__version__"]
