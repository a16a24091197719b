"""The report's part on table columns: what each is worth to the challenger (permutation
importance on validation, with its interval) and what it costs (input width,
preprocessing time per row); columns worth nothing in two runs in a row are named."""

from __future__ import annotations

from mllife.evaluation.importance import ColumnValue
from mllife.reporting.blocks import Paragraph, ReportSection, Table

__all__ = ["features_section"]


def features_section(values: list[ColumnValue], flagged: list[str]) -> ReportSection:
    rows = [
        [v.column, f"{v.importance:+.4f} [{v.low:+.4f}, {v.high:+.4f}]", v.width,
         f"{v.micros_per_row:.2f}", "not beneficial" if v.column in flagged else ""]
        for v in values
    ]  # fmt: skip
    header = ["column", "accuracy lost when shuffled [95% interval]", "input width",
              "µs per row", ""]  # fmt: skip
    blocks = [
        Paragraph(
            "Each column's values shuffled on the validation rows, ten times: how much"
            " accuracy the challenger loses (permutation importance). A column whose interval"
            " holds 0 in this run and the previous one is not beneficial: it costs"
            " preprocessing, monitoring and risk, and adds nothing the model can show."
        ),
        Table.of(header, rows),
    ]
    steps = []
    if flagged:
        steps.append(
            f"Columns {', '.join(flagged[:8])} added nothing measurable in two runs: consider"
            " dropping them from the data (less to prepare, serve and monitor)."
        )
    return ReportSection("features", "What each column is worth", tuple(blocks), [], steps)
