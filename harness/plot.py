"""harness plot: one panel per task, one bar per model (mean over seeds, 95% CI error bars),
the published numbers as markers. Reads the same Table that `harness table` prints."""
from __future__ import annotations

from pathlib import Path

from .table import Table


def plot_table(table: Table, published: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [(t, d) for t, d in table.task_columns if any(t in r.cells for r in table.rows)]
    if not columns:
        from .errors import UserError

        raise UserError("nothing to plot: no task has a result")
    fig, axes = plt.subplots(1, len(columns), figsize=(3.2 * len(columns) + 1, 4.2), squeeze=False)
    colors = plt.get_cmap("tab10")
    scales = table.scales
    for ax, (task, display) in zip(axes[0], columns, strict=True):
        rows = [r for r in table.rows if task in r.cells]
        xs = range(len(rows))
        means = [r.cells[task].mean for r in rows]
        errs = [r.cells[task].half or 0.0 for r in rows]
        ax.bar(xs, means, yerr=errs, capsize=4, color=[colors(i % 10) for i in xs], alpha=0.85,
               label="ours (mean ± 95% CI)")
        refs = [(i, published.get(task, {}).get(r.model)) for i, r in enumerate(rows)]
        refs = [(i, v) for i, v in refs if v is not None]
        if refs:
            ax.scatter([i for i, _ in refs], [v for _, v in refs], marker="D", color="black", zorder=3,
                       label="published")
        for i, r in enumerate(rows):
            ax.text(i, means[i] + errs[i] + 0.3, f"{means[i]:.1f}\nn={r.cells[task].n}", ha="center", va="bottom",
                    fontsize=7)
        low = min(means + [v for _, v in refs]) - max(errs + [0]) - 3
        high = max(means + [v for _, v in refs]) + max(errs + [0]) + 3
        ax.set_ylim(max(0, low), min(100, high))
        ax.set_xticks(list(xs), [r.display for r in rows], rotation=35, ha="right", fontsize=8)
        ax.set_title(display if len(scales) <= 1 else f"{display} ({table.score_of(task).scale})")
        ax.grid(axis="y", alpha=0.3)
    what = "mixed metrics (see titles)" if len(scales) > 1 else "accuracy (%)" if scales == ["accuracy"] else scales[0]
    axes[0][0].set_ylabel(f"test {what}, protocol {table.protocol}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(f"poeta-harness, variant {table.variant}", fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    from .files import write_atomic

    write_atomic(path, writer=lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)
    return path
