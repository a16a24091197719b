"""The report as data: a few kinds of block that the templates render as HTML (Jinja2,
autoescaped: a label is text, never markup) and as Markdown, from one source.

A section builds blocks and plain sentences; it never writes markup itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "Block",
    "Bullets",
    "Figure",
    "Heading",
    "MarkedText",
    "Paragraph",
    "ReportSection",
    "Table",
    "Thumbnail",
    "Tile",
    "Tiles",
    "sentence",
]


def sentence(text: str) -> str:
    """``text`` with its first letter capitalised (reasons are written lower-case to be
    embedded in other sentences)."""
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 3
    kind: ClassVar[str] = "heading"


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: ClassVar[str] = "paragraph"


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    kind: ClassVar[str] = "bullets"


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: Markdown (Dagster metadata) shows at most this many rows; HTML shows all
    markdown_rows: int | None = None
    kind: ClassVar[str] = "table"

    @classmethod
    def of(cls, header: list[str], rows: list[list[Any]], *, markdown_rows=None) -> Table:
        """Cells become text here; the templates escape them. A column empty in every row
        is left out (a "training" column with nothing to say is noise)."""
        cells = [tuple("" if c is None else str(c) for c in row) for row in rows]
        keep = [i for i in range(len(header)) if not cells or any(row[i] for row in cells)]
        return cls(
            tuple(header[i] for i in keep),
            tuple(tuple(row[i] for i in keep) for row in cells),
            markdown_rows,
        )

    @property
    def markdown_part(self) -> tuple[tuple[str, ...], ...]:
        return self.rows if self.markdown_rows is None else self.rows[: self.markdown_rows]


@dataclass(frozen=True)
class Figure:
    """A chart (PNG); Markdown leaves it out."""

    png: bytes | None
    alt: str
    kind: ClassVar[str] = "figure"


@dataclass(frozen=True)
class Thumbnail:
    mime: str
    data: bytes
    alt: str


@dataclass(frozen=True)
class Tile:
    image: Thumbnail | None
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Tiles:
    """Small images or rows with captions (the galleries); Markdown leaves them out."""

    tiles: tuple[Tile, ...]
    kind: ClassVar[str] = "tiles"


@dataclass(frozen=True)
class MarkedText:
    """A text with a weight per word (positive: spoke for the caption's class), shown
    with the strongest words highlighted; Markdown gives the text and its top words."""

    words: tuple[tuple[str, float], ...]
    caption: str
    kind: ClassVar[str] = "marked"

    @property
    def shades(self) -> tuple[tuple[str, str], ...]:
        """(word, CSS class) per word: ``w3``..``w1`` for the strongest positive thirds of
        the largest weight, ``n1``-``n3`` likewise for negative ones, "" otherwise."""
        top = max((abs(w) for _, w in self.words), default=0.0) or 1.0
        out = []
        for word, weight in self.words:
            level = min(3, int(abs(weight) / top * 3 + 0.5))
            out.append((word, "" if level == 0 else ("w" if weight > 0 else "n") + str(level)))
        return tuple(out)

    @property
    def strongest(self) -> str:
        ranked = sorted(self.words, key=lambda item: -item[1])[:3]
        return ", ".join(f"{w} ({v:+.2f})" for w, v in ranked if v > 0)


Block = Heading | Paragraph | Bullets | Table | Figure | Tiles | MarkedText


@dataclass(frozen=True)
class ReportSection:
    """One part of the status report: its blocks, what it tells the client (plain
    sentences), and the next steps it suggests."""

    anchor: str = ""
    title: str = ""
    blocks: tuple[Block, ...] = ()
    client_lines: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    #: False for parts that are only pictures (the gallery)
    in_markdown: bool = True

    def __bool__(self) -> bool:
        return bool(self.blocks or self.client_lines or self.next_steps)
