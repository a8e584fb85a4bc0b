"""poeta-harness: fine-tune every registered model on every registered task, record, tabulate.

Data flow, one module per step:
    registry.py (tasks/*.yaml, models.yaml) -> splits.py / data.py (load, check, subset; format,
    tokenize, cache) -> models.py + routine.py (load the model; one fine-tuning routine)
    -> record.py / store.py (one JSON record per run) -> scores.py / stats.py (pure aggregation)
    -> table.py (markdown, csv, latex, json)
"""

__version__ = "0.1.0"
