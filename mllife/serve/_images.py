"""Uploaded images, before any pixel is decoded: the header's format and size checked
against the per-image budget, and refusals worded for the client (no object reprs).
The decode itself is the model's own preprocessing (``mllife.preprocess.images``)."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np

from mllife.monitoring.images import pixel_statistics
from mllife.serve._inputs import InputError

__all__ = [
    "IMAGE_FORMATS",
    "DecodedImage",
    "ImageUploads",
    "decode_image",
    "image_size",
    "predict_images",
]

IMAGE_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM"})


@dataclass(frozen=True)
class DecodedImage:
    #: grayscale pixels, what the model's preprocessing receives
    pixels: np.ndarray
    brightness: float
    contrast: float
    width: int
    height: int


def _read_upload(payload: bytes, *, position: int, max_pixels: int, decode: bool):
    """(width, height, grayscale pixels or None): the header checked first (format, size
    within ``max_pixels``), pixels decoded only when ``decode``. Every failure is an
    :class:`InputError` naming the image."""
    from PIL import Image

    where = f"image {position}"
    if not payload:
        raise InputError(f"{where} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(payload)) as image:
                _check_header(image, where, max_pixels)
                width, height = image.size
                pixels = np.asarray(image.convert("L"), dtype=np.uint8) if decode else None
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{where} is refused as a decompression bomb: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{where} is not a readable image: {_plain(exc)}") from None
    except Warning as exc:  # a DecompressionBombWarning raised as an error above
        raise InputError(f"{where} is refused: {exc}") from None
    return width, height, pixels


def image_size(payload: bytes, *, position: int, max_pixels: int) -> tuple[int, int]:
    """(width, height) an upload declares in its header, read without decoding a pixel;
    an :class:`InputError` for a non-image, an unaccepted format or one over
    ``max_pixels``."""
    width, height, _ = _read_upload(payload, position=position, max_pixels=max_pixels, decode=False)
    return width, height


@dataclass(frozen=True)
class ImageUploads:
    """A request's images, headers checked, not yet decoded: the model's preprocessing
    decodes them (in a worker thread) exactly as it decoded its training images."""

    payloads: list[bytes]
    #: (width, height) of each, from its header
    sizes: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.payloads)


def _plain(exc: BaseException) -> str:
    """An exception's message without object reprs (heap addresses mean nothing to a
    client and tell an attacker about the process)."""
    return re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the upload", str(exc))


def _check_header(image, where: str, max_pixels: int) -> None:
    if image.format not in IMAGE_FORMATS:
        raise InputError(
            f"{where}: format {image.format} is not accepted; send one of {sorted(IMAGE_FORMATS)}"
        )
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise InputError(
            f"{where} is {width}x{height} pixels; the limit is {max_pixels}"
            " pixels (serving.max_image_pixels)"
        )


def decode_image(payload: bytes, *, position: int, max_pixels: int) -> DecodedImage:
    """Decode an uploaded image, refusing non-images and anything over ``max_pixels``.

    The size is read from the header before any pixel is decoded, so a decompression
    bomb is refused without inflating it.
    """
    width, height, pixels = _read_upload(
        payload, position=position, max_pixels=max_pixels, decode=True
    )
    values = pixels.astype(np.float64)
    return DecodedImage(pixels, float(values.mean()), float(values.std()), width, height)


def predict_images(served, uploads: ImageUploads):
    """For a served model (a ``ServedModel``): class indices, their probabilities and
    per-image statistics to log. The images are decoded once, by the model's own
    preprocessing, and the statistics are taken from the very pixels the model saw."""
    model = served.model
    pixels = model.preprocessor.pixels(uploads.payloads)
    proba = model.predict_proba_features(model.preprocessor.normalize(pixels))
    best = proba.argmax(axis=1)
    features = pixel_statistics(pixels.numpy(), uploads.sizes)
    return best, proba[np.arange(len(best)), best], features
