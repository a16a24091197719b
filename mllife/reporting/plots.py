"""Small PNG plots for reports and Dagster metadata (matplotlib, headless)."""

from __future__ import annotations

import polars as pl

from mllife.metrics._plot import figure, to_png

__all__ = [
    "drift_effects_png",
    "figure",
    "metric_history_png",
    "problem_history_png",
    "served_accuracy_png",
    "to_png",
]


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


def drift_effects_png(columns: pl.DataFrame, *, min_effect: float, title: str) -> bytes | None:
    """Horizontal bars: each column's drift effect (Wasserstein/std or Jensen-Shannon),
    drifted columns in red, with the effect threshold as a dashed line."""
    if columns.height == 0:
        return None
    frame = columns.sort("effect")
    fig, ax = figure(height=max(1.6, 0.28 * frame.height + 0.9))
    colours = ["#c0392b" if d else "#7f8c8d" for d in frame["drifted"].to_list()]
    ax.barh(frame["column"].to_list(), frame["effect"].to_list(), color=colours)
    ax.axvline(min_effect, linestyle="--", color="#333", linewidth=1, label="effect threshold")
    ax.set_xlabel("effect size (red: drifted after the adjusted test)")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(loc="lower right", fontsize=7)
    ax.grid(alpha=0.3, axis="x")
    return to_png(fig)


def served_accuracy_png(quality: pl.DataFrame) -> bytes | None:
    """Accuracy on labelled served predictions per period, one line per model."""
    if quality.height == 0:
        return None
    fig, ax = figure()
    for (name,), part in quality.sort("period").group_by(["model_name"], maintain_order=True):
        ax.plot(part["period"].to_list(), part["accuracy"].to_list(), marker="o", label=name)
    ax.set_ylabel("accuracy on served data (feedback)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.autofmt_xdate()
    return to_png(fig)
