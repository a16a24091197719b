"""What an image file is, decided once for every stage: the data scan, training,
evaluation, serving, the gallery and drift all open images here.

- the size is read from the header and checked against a pixel budget before any pixel
  is decoded (a 700-byte file can declare 16 M pixels);
- EXIF orientation is applied (a portrait phone photo is upright, not sideways);
- an animated image gives its first frame;
- any mode becomes 8-bit grayscale (``L``) or colour (``RGB``): palette, CMYK, 16-bit,
  alpha (composited on white) are converted;
- a large JPEG is decoded at a reduced scale when only a small result is needed (PIL's
  draft mode), which is several times faster and smaller than a full decode.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mllife._errors import DataError

__all__ = [
    "COLOUR_MODES",
    "DEFAULT_MAX_PIXELS",
    "ImageFileError",
    "channels_of_mode",
    "open_image",
    "read_header",
    "to_channels",
]

DEFAULT_MAX_PIXELS = 50_000_000
#: modes that carry colour; everything else is treated as grayscale
COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA"})


class ImageFileError(DataError):
    """An image that cannot be used: unreadable, too large, not an image."""


def channels_of_mode(mode: str | None) -> int:
    return 3 if mode in COLOUR_MODES else 1


def _label(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else "the image"


def _plain(exc: BaseException) -> str:
    """PIL's message without object reprs (``<_io.BytesIO object at 0x7f...>``): a heap
    address means nothing to a user and tells an attacker about the process."""
    return re.sub(r" ?<[^<>]* at 0x[0-9a-fA-F]+>", "", str(exc))


@contextlib.contextmanager
def _checked(source: bytes | str | Path, *, max_pixels: int, what: str, setting: str | None):
    """The opened image, not yet decoded, its size read from the header and checked
    against ``max_pixels``. Any failure, here or in the caller's block (a decode), is an
    :class:`ImageFileError` naming ``what``."""
    if isinstance(source, bytes) and not source:
        raise ImageFileError(f"{what} is empty")
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                width, height = image.size
                if width < 1 or height < 1 or width * height > max_pixels:
                    where = f" ({setting})" if setting else ""
                    raise ImageFileError(
                        f"{what} is {width}x{height} pixels, over the {max_pixels:,}-pixel"
                        f" limit{where}"
                    )
                yield image
    except ImageFileError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageFileError(f"{what} is refused as a decompression bomb: {exc}") from None
    except Warning as exc:
        raise ImageFileError(f"{what} is refused: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageFileError(f"{what} is not a readable image: {_plain(exc)}") from None


def read_header(
    source: bytes | str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    what: str | None = None,
    setting: str | None = None,
) -> tuple[str | None, int, int]:
    """(format, width, height) from the header alone: no pixel is decoded, so a
    decompression bomb is refused unopened. ``setting`` names the limit in the error."""
    with _checked(
        source, max_pixels=max_pixels, what=what or _label(source), setting=setting
    ) as image:
        return image.format, image.width, image.height


def open_image(
    source: bytes | str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    draft_to: int | None = None,
    what: str | None = None,
    setting: str | None = None,
) -> Image.Image:
    """The decoded, upright first frame of ``source`` (bytes or a path).

    ``draft_to``: the smallest side the caller needs; a JPEG is then decoded at the
    largest power-of-two reduction that still gives at least that (PIL draft mode).
    """
    what = what or _label(source)
    with _checked(source, max_pixels=max_pixels, what=what, setting=setting) as image:
        width, height = image.size
        if draft_to and image.format == "JPEG":
            scale = max(1, min(width, height) // draft_to)
            image.draft(image.mode, (max(1, width // scale), max(1, height // scale)))
        image.seek(0)  # an animated image: its first frame
        image.load()
        return ImageOps.exif_transpose(image)


def to_channels(image: Image.Image, channels: int) -> np.ndarray:
    """``image`` as a uint8 array (H, W) for 1 channel or (H, W, 3) for 3."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit: scale to 8 bits (PIL's convert("L") would clip at 255)
        array = np.asarray(image, dtype=np.float64)
        top = float(array.max()) or 1.0
        image = Image.fromarray((array * (255.0 / max(top, 255.0))).astype(np.uint8))
    elif mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    elif "A" in mode or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    target = "RGB" if channels == 3 else "L"
    if image.mode != target:
        image = image.convert(target)
    return np.asarray(image, dtype=np.uint8)
