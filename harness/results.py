"""Results as a pandas DataFrame, and the comparison table built from one: the notebook's way in.

    import harness.results as hr
    df = hr.load("results")                      # one row per record x protocol x metric
    df[df.metric == "accuracy"].groupby(["task", "model"]).value.mean()
    print(hr.table(df))                          # what `harness table` prints for these records
    print(hr.table(df, suite="assin", metric="mse", group="all"))   # as `harness table --suite assin ...`

The columns (hr.COLUMNS) are documented in harness/aggregate/frame.py, which builds the frame.
"""
from __future__ import annotations

import warnings

from harness.aggregate.frame import COLUMNS, frame, load, read, scores_of, variants_of
from harness.record.protocols import DEFAULT_PROTOCOL

__all__ = ["COLUMNS", "frame", "load", "read", "table"]


def table(df, protocol: str = DEFAULT_PROTOCOL, fmt: str = "markdown", variants: list[str] | None = None, *,
          suite: str | None = None, metric: str | None = None, normalized: bool = False,
          group: str | None = None) -> str:
    """The text `harness table` prints for these results, with the same axes and defaults: one table per
    variant (default: every variant in df) and precision; the suite's tasks as columns (default ttl, or where
    the records are when it has none, with a warning saying so), each showing its main metric (or `metric`, raw
    or `normalized`); the model group's rows (default ttl, then the models in no group; 'all': every model).
    Raises UserError where records of one cell differ in task definition, data, model weights or precision
    (harness/aggregate/pooling.py), or where a suite, metric or group is unknown or has no records."""
    shown = axes(df, variants if variants is not None else variants_of(df), suite, metric, normalized, group)
    if shown.note:
        warnings.warn(shown.note, stacklevel=2)
    return render(df, shown, protocol, fmt)


def axes(df, variants: list[str], suite: str | None = None, metric: str | None = None, normalized: bool = False,
         group: str | None = None):
    """What a table of df shows (aggregate.columns.table_axes over the registry)."""
    from harness.aggregate.columns import table_axes
    from harness.registry.load import load_models, load_tasks

    return table_axes(load_tasks(), load_models(), zip(df.task, df.model, df.variant, strict=True), variants,
                      suite, metric, normalized, group)


def render(df, shown, protocol: str = DEFAULT_PROTOCOL, fmt: str = "markdown", notes: dict | None = None) -> str:
    """The table text of df's rows that `shown` (axes) shows: `harness table` and table() both end here.
    notes: variant -> a note under its legend (the tuned protocol's)."""
    from harness.aggregate import pooling
    from harness.outputs.table_text import render_scores

    df = df[[shown.shows(t, m) for t, m in zip(df.task, df.model, strict=True)]]
    pooling.check(df, pooling.WITHIN_A_PRECISION)
    cols = shown.columns
    scores = sorted((s for s in scores_of(df, protocol, scoring=cols.scoring) if s.variant in shown.variants),
                    key=lambda s: (shown.variants.index(s.variant), s.precision))
    return render_scores(scores, protocol, fmt, cols.tasks, shown.rows, cols.published, cols.scoring, notes)
