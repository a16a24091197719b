"""Small PNG plots for reports and Dagster metadata (matplotlib, headless)."""

from __future__ import annotations

import polars as pl

from mllife.metrics._plot import figure, to_png
from mllife.reporting.chart_cache import memoized

__all__ = [
    "confusion_png",
    "drift_effects_png",
    "figure",
    "metric_history_png",
    "problem_history_png",
    "served_accuracy_png",
    "served_ratings_png",
    "to_png",
]


def _versions_axis(ax, ylabel: str, labels: list[str]) -> None:
    """x: model versions in order of training, each named (name and short hash)."""
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7, rotation=30, ha="right")
    ax.set_xlabel("model version (in order of training)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _legend_beside(ax) -> None:
    """The legend right of the axes, where it covers no point."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


@memoized
def metric_history_png(history: pl.DataFrame, *, metric: str, split: str) -> bytes | None:
    """Line chart of ``value`` per model version (x: order of creation, each version
    named), one line per candidate name."""
    if history.height == 0:
        return None
    history = history.sort("created_at").with_row_index("version", offset=1)
    fig, ax = figure(width=7.2)
    for (name,), part in history.group_by(["name"], maintain_order=True):
        ax.plot(part["version"].to_list(), part["value"].to_list(), marker="o", label=name)
    labels = [f"{n} {h[:6]}" for n, h in zip(history["name"], history["model_hash"], strict=True)]
    _versions_axis(ax, f"{split} {metric}", labels)
    _legend_beside(ax)
    return to_png(fig)


@memoized
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
    fig, ax = figure(width=7.2)
    for (problem,), part in frame.sort("version").group_by(["problem"], maintain_order=True):
        ax.plot(
            part["version"].to_list(),
            [1 - a for a in part["accuracy"].to_list()],
            marker="o",
            label=problem,
        )
    names = (
        dict(zip(history["model_hash"], history["name"], strict=False))
        if ("name" in history.columns)
        else {}
    )
    labels = [f"{names.get(h, '')} {h[:6]}".strip() for h in order["model_hash"]]
    _versions_axis(ax, "error rate on the problem's patterns", labels)
    ax.set_ylim(-0.02, 1.02)
    _legend_beside(ax)
    return to_png(fig)


@memoized
def drift_effects_png(columns: pl.DataFrame, *, min_effect: float, title: str) -> bytes | None:
    """Horizontal bars: each column's drift effect (Wasserstein/std or Jensen-Shannon),
    drifted columns in red, with the effect threshold as a dashed line."""
    if columns.height == 0:
        return None
    frame = columns.sort("effect")
    fig, ax = figure(height=max(1.6, 0.28 * frame.height + 0.9))
    from matplotlib.patches import Patch

    drifted = frame["drifted"].to_list()
    colours = ["#c0392b" if d else "#7f8c8d" for d in drifted]
    ax.barh(frame["column"].to_list(), frame["effect"].to_list(), color=colours)
    ax.axvline(min_effect, linestyle="--", color="#333", linewidth=1, label="effect threshold")
    ax.set_xlabel("effect size (Wasserstein distance in std, or Jensen-Shannon)")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    # the legend names only the colours the chart shows
    handles = [ax.get_legend_handles_labels()[0][0]]
    if any(drifted):
        handles.append(Patch(color="#c0392b", label="drifted (adjusted test and effect)"))
    if not all(drifted):
        handles.append(Patch(color="#7f8c8d", label="not drifted"))
    ax.legend(handles=handles, loc="lower right", fontsize=7)
    ax.grid(alpha=0.3, axis="x")
    return to_png(fig)


@memoized
def served_accuracy_png(quality: pl.DataFrame) -> bytes | None:
    """Accuracy on labelled served predictions per period, one line per model."""
    if quality.height == 0:
        return None
    import datetime as dt

    import matplotlib.dates as mdates

    fig, ax = figure(width=7.2)
    for (name,), part in quality.sort("period").group_by(["model_name"], maintain_order=True):
        ax.plot(part["period"].to_list(), part["accuracy"].to_list(), marker="o", label=name)
    periods = quality["period"].to_list()
    if min(periods) == max(periods):  # one period: a day either side, not years
        ax.set_xlim(min(periods) - dt.timedelta(days=1), max(periods) + dt.timedelta(days=1))
    span = (max(periods) - min(periods)).days
    ax.xaxis.set_major_locator(
        mdates.DayLocator() if span <= 10 else mdates.AutoDateLocator(maxticks=8)
    )
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.set_xlabel("period (day of the served predictions)")
    ax.set_ylabel("served accuracy (feedback)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    _legend_beside(ax)
    fig.autofmt_xdate()
    return to_png(fig)


@memoized
def served_ratings_png(ratings: pl.DataFrame) -> bytes | None:
    """Users' mean rating (1-5) per period, one line per model: beside served accuracy."""
    if ratings.height == 0:
        return None
    import datetime as dt

    import matplotlib.dates as mdates

    fig, ax = figure(width=7.2)
    for (name,), part in ratings.sort("period").group_by(["model_name"], maintain_order=True):
        ax.plot(part["period"].to_list(), part["mean_rating"].to_list(), marker="o", label=name)
    periods = ratings["period"].to_list()
    if min(periods) == max(periods):
        ax.set_xlim(min(periods) - dt.timedelta(days=1), max(periods) + dt.timedelta(days=1))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.set_xlabel("period (day of the ratings)")
    ax.set_ylabel("users' mean rating (1-5)")
    ax.set_ylim(0.8, 5.2)
    ax.grid(alpha=0.3)
    _legend_beside(ax)
    fig.autofmt_xdate()
    return to_png(fig)


@memoized
def confusion_png(report, *, title: str) -> bytes:
    """The evaluation report's confusion heat map (``EvaluationReport.plot_confusion``)."""
    return report.plot_confusion(title=title)
