"""A synthetic photo-like data set in which colour carries the class.

Three classes (``red``, ``green``, ``blue``): each image's background hue comes from
its class's band, at a luminance drawn from the same range for every class, so the
grayscale versions of the classes are indistinguishable (a grayscale model stays near
chance) while a colour model separates them. Distractors a real photo set has: random
sizes (48 to 640 px, portrait and landscape), gray shapes, noise, JPEG compression, and
some portrait photos stored sideways with an EXIF orientation tag (as phones do).
"""

from __future__ import annotations

import colorsys
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mllife.storage.files import DIR_MODE

__all__ = ["CLASSES", "colour_photo", "write_colour_photos"]

#: class -> hue band (degrees)
CLASSES = {"red": (-20, 20), "green": (100, 140), "blue": (210, 250)}
_EXIF_ORIENTATION = 0x0112


def _equal_luma_rgb(hue_degrees: float, luma: float, saturation: float) -> tuple[int, int, int]:
    """An RGB colour of this hue whose ITU-R 601 luma (PIL's "L") is ``luma``."""
    r, g, b = colorsys.hsv_to_rgb((hue_degrees % 360) / 360, saturation, 1.0)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    scale = luma / 255 / y
    rgb = np.clip(np.array([r, g, b]) * scale, 0, 1)
    return tuple(int(round(v * 255)) for v in rgb)


def colour_photo(label: str, rng: np.random.Generator, *, size: tuple[int, int] | None = None):
    """One synthetic photo of ``label`` as a PIL RGB image."""
    low, high = CLASSES[label]
    width, height = size or (int(rng.integers(48, 640)), int(rng.integers(48, 640)))
    luma = float(rng.uniform(90, 150))
    colour = _equal_luma_rgb(rng.uniform(low, high), luma, float(rng.uniform(0.5, 0.8)))
    image = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, 4))):  # gray shapes: no colour signal in them
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(0.1, 0.4) * width, rng.uniform(0.1, 0.4) * height
        gray = int(rng.integers(40, 220))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x0, y0, x0 + w, y0 + h], fill=(gray, gray, gray))
    noise = rng.normal(0, 6, (height, width, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _jpeg(image: Image.Image, *, sideways: bool) -> bytes:
    buffer = io.BytesIO()
    if sideways:
        # stored rotated, with the tag that tells a viewer to rotate it back upright
        exif = Image.Exif()
        exif[_EXIF_ORIENTATION] = 6  # rotate 90 CW to display
        image.transpose(Image.Transpose.ROTATE_90).save(
            buffer, format="JPEG", quality=88, exif=exif
        )
    else:
        image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def write_colour_photos(target: Path, *, per_class: int = 120, seed: int = 0) -> int:
    """Write ``per_class`` JPEGs per class under ``target/<class>/``; all or nothing."""
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; remove it first to rewrite the data")
    rng = np.random.default_rng(seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(DIR_MODE)
    try:
        count = 0
        for label in CLASSES:
            folder = staging / label
            folder.mkdir()
            for index in range(per_class):
                image = colour_photo(label, rng)
                sideways = rng.random() < 0.1
                (folder / f"{label}_{index:04d}.jpg").write_bytes(_jpeg(image, sideways=sideways))
                count += 1
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count
