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

__all__ = ["gallery_html", "gallery_rows"]

THUMBNAIL_PX = 56
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
    with Image.open(path) as image:
        image = image.convert("L")
        scale = max(1, THUMBNAIL_PX // max(image.size))
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img class="thumb" alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


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
