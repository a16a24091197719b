"""Small PNG plots for reports and Dagster metadata (matplotlib, headless)."""

from __future__ import annotations

import io

import polars as pl

__all__ = ["figure", "metric_history_png", "problem_history_png", "to_png"]


def figure(width: float = 6.4, height: float = 3.2):
    """A headless matplotlib figure and axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def to_png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _versions_axis(ax, ylabel: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("model version (in order of training)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def metric_history_png(history: pl.DataFrame, *, metric: str, split: str) -> bytes | None:
    """Line chart of ``value`` per model version (x: order of creation), one line per name."""
    if history.height == 0:
        return None
    history = history.sort("created_at").with_row_index("version", offset=1)
    fig, ax = figure()
    for (name,), part in history.group_by(["name"], maintain_order=True):
        ax.plot(part["version"].to_list(), part["value"].to_list(), marker="o", label=name)
    _versions_axis(ax, f"{split} {metric}")
    ax.legend(loc="lower right", fontsize=8)
    return to_png(fig)


def problem_history_png(history: pl.DataFrame) -> bytes | None:
    """Error rate per known problem across model versions (x: order of training)."""
    if history.height == 0:
        return None
    order = (
        history.select("model_hash", "created_at")
        .unique()
        .sort("created_at")
        .with_row_index("version", offset=1)
    )
    frame = history.join(order.select("model_hash", "version"), on="model_hash")
    fig, ax = figure()
    for (problem,), part in frame.sort("version").group_by(["problem"], maintain_order=True):
        ax.plot(
            part["version"].to_list(),
            [1 - a for a in part["accuracy"].to_list()],
            marker="o",
            label=problem,
        )
    _versions_axis(ax, "error rate on the problem's patterns")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper right", fontsize=8)
    return to_png(fig)
