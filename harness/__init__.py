"""poeta-harness: fine-tune every registered model on every registered task, record, tabulate.

Data flow, one module per step:
    registry.py (tasks/*.yaml, models.yaml) -> splits.py / data.py (load, check, subset; format,
    tokenize, cache) -> models.py + objective.py + routine.py (load the model; loss and predictions per
    task type; one fine-tuning routine) -> record.py / store.py (one JSON record per run)
    -> metrics.py / scores.py / stats.py (pure aggregation) -> suites.py + table.py (which tasks, which
    metric; markdown, csv, latex, json)
"""

__version__ = "0.1.0"
