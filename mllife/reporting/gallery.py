"""The prediction gallery: what a person looks at before a model reaches a client.

Misclassified validation examples grouped by confusion pair (true -> predicted), the
most confident errors first (a confident mistake hints at a bias in the data, like the
"people wearing hats" of the seed article), then the least confident correct ones.
Images become small inline thumbnails; table rows are shown as rows.
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from pathlib import Path

import polars as pl
from PIL import Image

from mllife.data.decode import COLOUR_MODES, open_image

__all__ = ["gallery_html", "gallery_rows", "thumbnail_tag"]

THUMBNAIL_PX = 56
THUMBNAIL_MAX_PX = 96
MAX_ERRORS = 36
MAX_UNSURE = 12


def gallery_rows(
    rows: pl.DataFrame, predicted: tuple[str, ...], confidence: tuple[float, ...]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(errors, most confident first) and (correct, least confident first)."""
    frame = rows.with_columns(
        pl.Series("predicted", list(predicted), dtype=pl.String),
        pl.Series("confidence", list(confidence), dtype=pl.Float64),
    )
    errors = frame.filter(pl.col("label") != pl.col("predicted")).sort(
        "confidence", descending=True
    )
    unsure = frame.filter(pl.col("label") == pl.col("predicted")).sort("confidence")
    return errors.head(MAX_ERRORS), unsure.head(MAX_UNSURE)


def _thumbnail(path: Path) -> str:
    return thumbnail_tag(path, alt=path.name)


def thumbnail_tag(source: Path | bytes, *, alt: str) -> str:
    """A small inline image: photos downscaled so the longest side is THUMBNAIL_MAX_PX
    (whatever the source size: a 12 MP photo is a few KB), tiny images (digits) scaled up
    to about THUMBNAIL_PX with sharp pixels; upright (EXIF) and in colour as the model
    saw them."""
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
    data = base64.b64encode(buffer.getvalue()).decode()
    kind = "jpeg" if photo else "png"
    return f'<img class="thumb" alt="{html.escape(alt)}" src="data:image/{kind};base64,{data}">'


def _tile(row: dict, root: Path, kind: str, features: list[str]) -> str:
    caption = (
        f"true {html.escape(str(row['label']))} → {html.escape(str(row['predicted']))}"
        f" ({row['confidence']:.0%})"
    )
    if kind == "images":
        body = _thumbnail(root / row["path"])
        where = html.escape(row["path"])
    else:
        body = "<br>".join(
            f"{html.escape(c)}={html.escape(str(row[c]))[:24]}" for c in features[:8]
        )
        where = f"row {row['row']}"
    return (
        f'<figure class="tile">{body}<figcaption>{caption}<br><small>{where}</small>'
        "</figcaption></figure>"
    )


def gallery_html(
    rows: pl.DataFrame,
    predicted: tuple[str, ...],
    confidence: tuple[float, ...],
    *,
    root: Path,
    kind: str,
    features: list[str] | None = None,
) -> str:
    errors, unsure = gallery_rows(rows, predicted, confidence)
    features = features or []
    parts = ['<section id="gallery"><h2>Gallery for manual inspection</h2>']
    if errors.height == 0:
        parts.append("<p>No validation example is misclassified.</p>")
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in errors.iter_rows(named=True):
        groups[(row["label"], row["predicted"])].append(row)
    for (true, pred), items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        parts.append(
            f"<h3>{html.escape(true)} predicted as {html.escape(pred)}"
            f" ({len(items)})</h3><div class='tiles'>"
        )
        parts += [_tile(r, root, kind, features) for r in items]
        parts.append("</div>")
    if unsure.height:
        parts.append("<h3>Correct, but least confident</h3><div class='tiles'>")
        parts += [_tile(r, root, kind, features) for r in unsure.iter_rows(named=True)]
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)
