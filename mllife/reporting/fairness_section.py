"""The report's per-group quality section (``[fairness] groups``): a table per column
and the largest gap in words, said to the client only when chance does not explain it."""

from __future__ import annotations

from mllife.evaluation.groups import MIN_GROUP_ROWS, group_quality
from mllife.reporting.blocks import Heading, Paragraph, ReportSection, Table

__all__ = ["fairness_section"]


def fairness_section(rows, predictions, columns: tuple[str, ...]) -> ReportSection | None:
    """``rows``: the validation rows (with ``label`` and the group columns), in the order
    of ``predictions`` (the challenger's)."""
    if not columns:
        return None
    blocks, client, steps = [], [], []
    for column in columns:
        quality, gap = group_quality(rows["label"].to_list(), predictions, rows[column].to_list())
        blocks.append(Heading(f"By {column}", 4))
        table_rows = [
            [g.group, g.n, f"{g.accuracy:.3f} [{g.low:.3f}, {g.high:.3f}]",
             ", ".join(f"{c}: {r:.2f}" for c, r in g.recall.items())]
            for g in quality
        ]  # fmt: skip
        blocks.append(Table.of([column, "rows", "accuracy [95% CI]", "recall per class"],
                               table_rows))  # fmt: skip
        if len(quality) == 1:
            blocks.append(Paragraph(f"{column} has one value on validation: nothing to compare."))
            continue
        if gap is None:
            blocks.append(
                Paragraph(
                    f"Fewer than two values of {column} have {MIN_GROUP_ROWS}+ validation rows:"
                    " too few to compare groups; add labelled data."
                )
            )
            continue
        said = (
            f"Accuracy for {column} = {gap.better} is {gap.gap * 100:.1f} points above"
            f" {column} = {gap.worse} (95% interval of the gap [{gap.low * 100:.1f},"
            f" {gap.high * 100:.1f}] points)"
        )
        if gap.beyond_chance:
            blocks.append(Paragraph(said + ": beyond chance."))
            client.append(f"The model is less accurate for {column} = {gap.worse}: {said}.")
            steps.append(
                f"Collect more labelled examples where {column} = {gap.worse}, and check"
                " the model on them before relying on it there."
            )
        else:
            blocks.append(Paragraph(said + ": chance may explain it."))
    return ReportSection("fairness", "Quality per group", tuple(blocks), client, steps)
