"""The prediction gallery: what a person looks at before a model reaches a client.

Misclassified validation examples grouped by confusion pair (true -> predicted), the
most confident errors first (a confident mistake hints at a bias in the data, like the
"people wearing hats" of the seed article), then the least confident correct ones.
Images become small inline thumbnails; table rows are shown as rows.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import polars as pl
from PIL import Image

from mllife.data.decode import COLOUR_MODES, open_image
from mllife.evaluation.explain import gallery_rows
from mllife.reporting.blocks import Heading, Paragraph, ReportSection, Thumbnail, Tile, Tiles

__all__ = ["gallery_section", "thumbnail"]

THUMBNAIL_PX = 56
THUMBNAIL_MAX_PX = 96


def _thumbnail(path: Path) -> Thumbnail:
    return thumbnail(path, alt=path.name)


def thumbnail(source: Path | bytes, *, alt: str) -> Thumbnail:
    """A small image for the report: photos downscaled so the longest side is
    THUMBNAIL_MAX_PX (whatever the source size: a 12 MP photo is a few KB), tiny images
    (digits) scaled up to about THUMBNAIL_PX with sharp pixels; upright (EXIF) and in
    colour as the model saw them."""
    image = open_image(source, draft_to=THUMBNAIL_MAX_PX, what=alt)
    image = image.convert("RGB" if image.mode in COLOUR_MODES else "L")
    if max(image.size) > THUMBNAIL_MAX_PX:
        image.thumbnail((THUMBNAIL_MAX_PX, THUMBNAIL_MAX_PX), Image.LANCZOS)
    else:
        scale = max(1, THUMBNAIL_PX // max(image.size))
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    photo = image.mode == "RGB" and max(image.size) > 32
    image.save(buffer, format="JPEG" if photo else "PNG", **({"quality": 80} if photo else {}))
    return Thumbnail("image/jpeg" if photo else "image/png", buffer.getvalue(), alt)


def _tile(row: dict, root: Path, kind: str, features: list[str], hidden: frozenset) -> Tile:
    caption = f"true {row['label']} → {row['predicted']} ({row['confidence']:.0%})"
    if kind == "images":
        return Tile(_thumbnail(root / row["path"]), (caption, row["path"]))
    values = tuple(
        f"{c}=(pii, hidden)" if c in hidden else f"{c}={str(row[c])[:24]}" for c in features[:8]
    )
    return Tile(None, (*values, caption, f"row {row['row']}"))


def gallery_section(
    rows: pl.DataFrame,
    predicted: tuple[str, ...],
    confidence: tuple[float, ...],
    *,
    root: Path,
    kind: str,
    features: list[str] | None = None,
    hidden: frozenset = frozenset(),
    saliency: Callable[[str], Path] | None = None,
) -> ReportSection:
    """``hidden``: ``[data] pii`` columns, named but never shown. ``saliency``: where
    the model's kept saliency map of an image (by sha256) would be
    (``evaluation.explain``), shown beside the misclassified image it was made for."""

    def tiles_of(row: dict) -> list[Tile]:
        tiles = [_tile(row, root, kind, features, hidden)]
        kept = saliency(row["sha256"]) if saliency and "sha256" in row else None
        if kept is not None and kept.is_file():
            tiles.append(Tile(Thumbnail("image/png", kept.read_bytes(), "saliency"),
                              ("saliency: what it leaned on",)))  # fmt: skip
        return tiles

    errors, unsure = gallery_rows(rows, predicted, confidence)
    features = features or []
    blocks: list = []
    if errors.height == 0:
        blocks.append(Paragraph("No validation example is misclassified."))
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in errors.iter_rows(named=True):
        groups[(row["label"], row["predicted"])].append(row)
    for (true, pred), items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        blocks.append(Heading(f"{true} predicted as {pred} ({len(items)})"))
        blocks.append(Tiles(tuple(t for r in items for t in tiles_of(r))))
    if unsure.height:
        blocks.append(Heading("Correct, but least confident"))
        tiles = tuple(_tile(r, root, kind, features, hidden) for r in unsure.iter_rows(named=True))
        blocks.append(Tiles(tiles))
    return ReportSection(
        "gallery", "Gallery for manual inspection", tuple(blocks), in_markdown=False
    )
