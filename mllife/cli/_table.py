"""Tables a person can read in a terminal: aligned columns, numbers rounded, long text
cut with an ellipsis, a plain sentence when there are no rows."""

from __future__ import annotations

from datetime import datetime

import polars as pl

__all__ = ["port", "print_table"]


def port(text: str) -> int:
    """An argparse type: a TCP port number, 1-65535."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: use 1-65535")
    return value


MAX_WIDTH = 48


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    text = " ".join(str(value).split())  # newlines and tabs would break the columns
    return text if len(text) <= MAX_WIDTH else text[: MAX_WIDTH - 1] + "…"


def print_table(frame: pl.DataFrame, *, empty: str, headers: dict[str, str] | None = None) -> None:
    """Print ``frame`` as aligned text columns, or ``empty`` when it has no rows."""
    if frame.height == 0:
        print(empty)
        return
    headers = headers or {}
    names = [headers.get(c, c.replace("_", " ")) for c in frame.columns]
    rows = [[_cell(v) for v in row] for row in frame.iter_rows()]
    numeric = [frame[c].dtype.is_numeric() for c in frame.columns]
    widths = [max(len(names[i]), *(len(r[i]) for r in rows)) for i in range(len(names))]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(w) if right else cell.ljust(w)
            for cell, w, right in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    print(line(names))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
