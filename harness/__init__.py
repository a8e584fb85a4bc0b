"""poeta-harness: fine-tune every registered model on every registered task, record, tabulate.

Data flow, one module per step:
    registry.py (tasks/*.yaml, models.yaml -> specs.py, validated by registry_parse.py) -> splits.py /
    data.py (load, check, subset; format, tokenize, cache) -> models.py + objective.py + routine.py +
    training.py (load the model; loss and predictions per task type; one routine per cell, one loop per
    fit) -> record.py / record_build.py / record_json.py / store.py (one JSON record per run)
    -> metrics.py / scores.py / stats.py (pure aggregation) -> suites.py + table.py + table_text.py
    (which tasks, which metric; cells and marks; markdown, csv, latex, json)
"""

__version__ = "0.1.0"
