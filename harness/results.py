"""Results as a pandas DataFrame, and the comparison table built from one: the notebook's way in.

    import harness.results as hr
    df = hr.load("results")                      # one row per record x protocol x metric
    df[df.metric == "accuracy"].groupby(["task", "model"]).value.mean()
    print(hr.table(df, protocol="clean"))        # the table `harness table --protocol clean` prints

The columns (hr.COLUMNS) are documented in harness/aggregate/frame.py, which builds the frame.
"""
from __future__ import annotations

from harness.aggregate.frame import COLUMNS, frame, load, read, scores_of, variants_of
from harness.record.protocols import DEFAULT_PROTOCOL

__all__ = ["COLUMNS", "frame", "load", "read", "table"]


def table(df, protocol: str = DEFAULT_PROTOCOL, fmt: str = "markdown", variants: list[str] | None = None,
          tasks: list[tuple[str, str]] | None = None, models: list[tuple[str, str]] | None = None,
          published: dict | None = None, scoring: dict | None = None, notes: dict | None = None) -> str:
    """The text `harness table` prints for these results: one table per variant (default: every variant in
    df), the tasks that have results and the models in the registry's order (or as
    given: (name, display) pairs); notes: variant -> a note under its legend. Raises UserError where
    records of one cell differ in task definition, data, model weights or precision (harness/aggregate/pooling.py)."""
    from harness.aggregate import pooling
    from harness.outputs.table_text import render_scores

    pooling.check(df, pooling.WITHIN_A_PRECISION)
    if tasks is None or models is None or published is None:
        from harness.registry.load import load_models, load_tasks

        registered_tasks, registered_models = load_tasks(), load_models()
        ran = set(df.task)  # as `harness table`: a registered task no record has is no column
        tasks = tasks if tasks is not None else [(t.name, t.display_name) for t in registered_tasks.values()
                                                 if t.name in ran]
        models = models if models is not None else [(m.name, m.display_name) for m in registered_models.values()]
        published = published if published is not None else {t.name: t.published
                                                              for t in registered_tasks.values()}
    variants = variants if variants is not None else variants_of(df)
    scores = sorted((s for s in scores_of(df, protocol, scoring=scoring) if s.variant in variants),
                    key=lambda s: (variants.index(s.variant), s.precision))
    return render_scores(scores, protocol, fmt, tasks, models, published, scoring, notes)
