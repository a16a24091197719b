"""The report's part on model age: quality against the age a model would have had, from
the staleness backtest (``evaluation.staleness``), with the suggested age limit."""

from __future__ import annotations

from mllife.evaluation.staleness import StalenessBacktest
from mllife.metrics._plot import figure, to_png
from mllife.reporting.blocks import Figure, Paragraph, ReportSection, Table

__all__ = ["staleness_section"]


def _chart(found: StalenessBacktest) -> bytes:
    fig, ax = figure(width=7.2)
    middle = [(p.start_days + p.end_days) / 2 for p in found.points]
    accuracy = [p.accuracy for p in found.points]
    ax.errorbar(
        middle, accuracy,
        yerr=[[a - p.low for a, p in zip(accuracy, found.points, strict=True)],
              [p.high - a for a, p in zip(accuracy, found.points, strict=True)]],
        marker="o", capsize=3,
    )  # fmt: skip
    if found.suggested_days is not None:
        ax.axvline(found.suggested_days, color="tab:red", linestyle="--", label="suggested limit")
        ax.legend(loc="lower left")
    ax.set_xlabel("model age (days since its training data ended)")
    ax.set_ylabel("accuracy [95% CI]")
    ax.grid(alpha=0.3)
    return to_png(fig)


def staleness_section(found: StalenessBacktest) -> ReportSection:
    blocks: list = [
        Paragraph(
            "Models trained on the rows up to a cut (at 40-70% of the time span, train and"
            " validation rows only) and scored on the rows that came later, by how long after"
            " the cut: how fast a model of this project goes stale. " + found.describe() + "."
        )
    ]
    steps = []
    if found.points:
        blocks.append(Figure(_chart(found), "accuracy against model age"))
        rows = [
            [
                f"{p.start_days:.0f}-{p.end_days:.0f}",
                p.n,
                f"{p.accuracy:.3f} [{p.low:.3f}, {p.high:.3f}]",
            ]
            for p in found.points
        ]
        blocks.append(Table.of(["age (days)", "rows", "accuracy [95% CI]"], rows))
    if found.suggested_days is not None:
        steps.append(
            f"Retrain within {found.suggested_days:.0f} days: older models lost accuracy"
            " beyond chance in the backtest ([monitoring] max_champion_age_days uses it"
            " unless you set it)."
        )
    return ReportSection("staleness", "How fast a model goes stale", tuple(blocks), [], steps)
