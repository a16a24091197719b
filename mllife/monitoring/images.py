"""What image drift is measured on: per-image statistics of the pixels a model sees
(brightness, contrast, each colour channel's mean) and the original size."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["image_statistics", "pixel_statistics"]


def pixel_statistics(pixels, sizes: list[tuple[int, int]] | None = None) -> list[dict]:
    """Per image, from the uint8 pixels (N, C, H, W) a model sees: brightness and contrast
    (mean and std of luminance), for colour the mean of each channel (red, green, blue),
    and the original width and height when ``sizes`` gives them. What image drift is
    measured on, for training data and served inputs alike."""
    values = np.asarray(pixels, dtype=np.float64)
    if values.shape[1] == 3:
        luminance = 0.299 * values[:, 0] + 0.587 * values[:, 1] + 0.114 * values[:, 2]
    else:
        luminance = values[:, 0]
    flat = luminance.reshape(len(values), -1)
    rows = []
    for i in range(len(values)):
        row = {"brightness": float(flat[i].mean()), "contrast": float(flat[i].std())}
        if values.shape[1] == 3:
            means = values[i].reshape(3, -1).mean(axis=1)
            row.update(red=float(means[0]), green=float(means[1]), blue=float(means[2]))
        if sizes is not None:
            row.update(width=int(sizes[i][0]), height=int(sizes[i][1]))
        rows.append(row)
    return rows


def image_statistics(images: list, *, preprocessor=None) -> pl.DataFrame:
    """:func:`pixel_statistics` of encoded images (bytes or paths), decoded by
    ``preprocessor`` (default: 64 px, colour when the image has colour), plus their
    original width and height."""
    # imported here: drift on tables (and `mllife.drift` from scripts) needs no torch
    from mllife.data.decode import channels_of_mode, open_image
    from mllife.preprocess.images import ImagePreprocessor

    rows = []
    for position, item in enumerate(images):
        image = open_image(item, what=f"image {position}")
        pre = preprocessor or ImagePreprocessor(
            size=64, channels=channels_of_mode(image.mode), resize="squash"
        )
        pixels = pre.pixels([image])
        rows += pixel_statistics(pixels.numpy(), [image.size])
    return pl.DataFrame(rows)
