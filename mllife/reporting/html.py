"""HTML pieces shared by the report sections: inlined PNGs and tables (also as Markdown)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReportSection", "image_tag", "table"]


@dataclass(frozen=True)
class ReportSection:
    """One part of the status report: its HTML, its Markdown, what it tells the client,
    and the next steps it suggests."""

    html: str = ""
    markdown: str = ""
    client_lines: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def image_tag(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table(header: list[str], rows: list[list[Any]]) -> tuple[str, str]:
    """The same table as HTML and as Markdown."""
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    md = (
        "| "
        + " | ".join(header)
        + " |\n|"
        + "---|" * len(header)
        + "\n"
        + "\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in rows)
    )
    return f"<table><tr>{h}</tr>{body}</table>", md
