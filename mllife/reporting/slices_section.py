"""The report's part on weak spots: slices of the validation rows where the challenger
is wrong more often than elsewhere, beyond chance (``evaluation.slices``), with a way
to keep each as a known problem."""

from __future__ import annotations

from pathlib import Path

from mllife.evaluation.slices import Slices
from mllife.reporting.blocks import Heading, Paragraph, ReportSection, Table, Tile, Tiles
from mllife.reporting.gallery import thumbnail

__all__ = ["slices_section"]

SHOWN = 8  # example thumbnails per slice


def slices_section(found: Slices, *, root: Path, kind: str) -> ReportSection:
    blocks: list = [
        Paragraph(
            "Slices of the validation rows (one or two conditions on "
            + ("the images' size, aspect, brightness, contrast and colour mode"
               if kind == "images" else "the table's columns")
            + ") where the challenger is wrong more often than on the rest; only gaps that"
            " survive a correction for testing many slices (Benjamini-Hochberg, 5%) are"
            " shown. " + found.describe() + "."
        )
    ]  # fmt: skip
    steps = []
    if found.slices:
        rows = [
            [n, s.description, s.size, f"{s.accuracy:.3f} [{s.low:.3f}, {s.high:.3f}]",
             f"{s.rest_accuracy:.3f}", f"{s.p_value:.2g}"]
            for n, s in enumerate(found.slices, start=1)
        ]  # fmt: skip
        header = ["#", "slice", "rows", "accuracy [95% CI]", "rest", "adjusted p"]
        blocks.append(Table.of(header, rows))
        if kind == "images":
            for n, s in enumerate(found.slices[:5], start=1):
                blocks.append(Heading(f"Slice {n}: {s.description}", 4))
                tiles = [Tile(thumbnail(root / m, alt=m), (m,)) for m in s.members[:SHOWN]]
                blocks.append(Tiles(tuple(tiles)))
        first = found.slices[0]
        steps.append(
            f"The challenger is weaker on {first.description} ({first.accuracy:.0%} vs"
            f" {first.rest_accuracy:.0%} elsewhere): keep it as a known problem, re-scored"
            " for every model version: `mllife problems add NAME --from-slice 1`."
        )
    return ReportSection("slices", "Weak spots (slice discovery)", tuple(blocks), [], steps)
