"""poeta-harness: fine-tune every registered model on every registered task, record, tabulate.

Data flow, one module per step:
    registry.py (tasks/*.yaml, models.yaml) -> data.py (load, format, tokenize, cache)
    -> routine.py (one fine-tuning routine) -> record.py (one JSON record per run)
    -> scores.py / stats.py (pure aggregation) -> table.py (markdown, csv, latex, json)
"""

__version__ = "0.1.0"
