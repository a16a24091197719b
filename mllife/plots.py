"""Small PNG plots for reports and Dagster metadata (matplotlib, headless)."""

from __future__ import annotations

import io

import polars as pl

__all__ = ["metric_history_png", "problem_history_png"]


def metric_history_png(history: pl.DataFrame, *, metric: str, split: str) -> bytes | None:
    """Line chart of ``value`` per model version (x: order of creation), one line per name."""
    if history.height == 0:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = history.sort("created_at").with_row_index("version", offset=1)
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    for (name,), part in history.group_by(["name"], maintain_order=True):
        ax.plot(part["version"].to_list(), part["value"].to_list(), marker="o", label=name)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("model version (in order of training)")
    ax.set_ylabel(f"{split} {metric}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def problem_history_png(history: pl.DataFrame) -> bytes | None:
    """Error rate per known problem across model versions (x: order of training)."""
    if history.height == 0:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    order = (
        history.select("model_hash", "created_at")
        .unique()
        .sort("created_at")
        .with_row_index("version", offset=1)
    )
    frame = history.join(order.select("model_hash", "version"), on="model_hash")
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    for (problem,), part in frame.sort("version").group_by(["problem"], maintain_order=True):
        ax.plot(
            part["version"].to_list(),
            [1 - a for a in part["accuracy"].to_list()],
            marker="o",
            label=problem,
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("model version (in order of training)")
    ax.set_ylabel("error rate on the problem's patterns")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
