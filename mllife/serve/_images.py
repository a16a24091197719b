"""Uploaded images, before any pixel is decoded: the header's format and size checked
against the per-image budget, and refusals worded for the client (no object reprs).
The decode itself is the model's own preprocessing (``mllife.preprocess.images``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mllife.data.decode import ImageFileError, open_image, read_header, to_channels
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


def image_size(payload: bytes, *, position: int, max_pixels: int) -> tuple[int, int]:
    """(width, height) an upload declares in its header, read without decoding a pixel;
    an :class:`InputError` for a non-image, an unaccepted format or one over
    ``max_pixels``."""
    where = f"image {position}"
    try:
        fmt, width, height = read_header(
            payload, max_pixels=max_pixels, what=where, setting="serving.max_image_pixels"
        )
    except ImageFileError as exc:
        raise InputError(str(exc)) from None
    if fmt not in IMAGE_FORMATS:
        raise InputError(
            f"{where}: format {fmt} is not accepted; send one of {sorted(IMAGE_FORMATS)}"
        )
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


def decode_image(payload: bytes, *, position: int, max_pixels: int) -> DecodedImage:
    """Decode an uploaded image (grayscale), refusing non-images and anything over
    ``max_pixels``; the rules of ``mllife.data.decode`` (EXIF, first frame, modes).

    The size is read from the header before any pixel is decoded, so a decompression
    bomb is refused without inflating it.
    """
    width, height = image_size(payload, position=position, max_pixels=max_pixels)
    try:
        image = open_image(payload, max_pixels=max_pixels, what=f"image {position}")
    except ImageFileError as exc:
        raise InputError(str(exc)) from None
    pixels = to_channels(image, 1)
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
