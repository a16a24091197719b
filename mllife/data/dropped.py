"""What cleaning dropped and what a contract refused, in lines a terminal can show:
grouped by reason, table rows as number ranges ("row 3, 17-19"), every input named (files
past ``limit`` per reason are counted, and all of them are in the HTML report)."""

from __future__ import annotations

import re

import polars as pl

__all__ = ["describe_dropped", "number_ranges"]

_GENERAL = re.compile(r":.*| of .*| \(.*")  # "exact duplicate of row 3" -> "exact duplicate"


def number_ranges(numbers) -> str:
    """[3, 17, 18, 19, 40] -> '3, 17-19, 40'."""
    values = sorted({int(n) for n in numbers})
    parts, start = [], None
    for i, n in enumerate(values):
        if start is None:
            start = n
        if i + 1 == len(values) or values[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts)


def describe_dropped(dropped: pl.DataFrame, *, limit: int = 50) -> list[str]:
    """One line per kind of reason: how many, and which files or rows."""
    if dropped.height == 0:
        return []
    frame = dropped.with_columns(pl.col("reason").str.replace(_GENERAL.pattern, "").alias("kind"))
    lines = []
    for (kind,), group in frame.group_by("kind", maintain_order=True):
        paths = group["path"].to_list()
        if all(p.startswith("row ") for p in paths):
            which = "rows " + number_ranges(p.removeprefix("row ") for p in paths)
        else:
            which = ", ".join(paths[:limit])
            if len(paths) > limit:
                which += f" and {len(paths) - limit} more (all in the report)"
        lines.append(f"{kind} ({len(paths)}): {which}")
    return lines
