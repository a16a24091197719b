"""The one preprocessing object used by training, evaluation and serving.

It is saved inside every model artifact, so a served prediction decodes and normalises
an input with exactly the code and statistics the model was trained with.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from mllife._errors import DataError

__all__ = ["ImageInput", "ImagePreprocessor", "preprocessor_from_state"]

#: What a model accepts as one image: a file path, encoded bytes, a PIL image, or a
#: 2-D (H, W) / 3-D (H, W, C) array.
ImageInput = str | Path | bytes | Image.Image | np.ndarray


def _decode(item: ImageInput, position: int) -> torch.Tensor:
    """One image to a ``uint8`` tensor of shape (1, H, W), grayscale."""
    try:
        if isinstance(item, (str, Path)):
            with Image.open(item) as image:
                array = np.array(image.convert("L"))
        elif isinstance(item, bytes):
            with Image.open(io.BytesIO(item)) as image:
                array = np.array(image.convert("L"))
        elif isinstance(item, Image.Image):
            array = np.array(item.convert("L"))
        elif isinstance(item, np.ndarray):
            array = item if item.ndim == 2 else np.asarray(Image.fromarray(item).convert("L"))
            if array.dtype != np.uint8:
                raise DataError(
                    f"image {position}: arrays must be uint8 (0..255), got {array.dtype}"
                )
        else:
            raise DataError(
                f"image {position}: unsupported input type {type(item).__name__}; pass a path,"
                " bytes, a PIL image or a uint8 array"
            )
    except (OSError, ValueError) as exc:
        raise DataError(f"image {position} ({str(item)[:80]!r}) cannot be decoded: {exc}") from exc
    return torch.from_numpy(np.array(array, dtype=np.uint8, order="C")).unsqueeze(0)


class ImagePreprocessor:
    """Decode, convert to grayscale, resize to ``size`` x ``size``, scale to [0, 1], normalise.

    ``fit`` learns the mean and standard deviation of the training pixels.

    Examples
    --------
    >>> pre = ImagePreprocessor(size=8).fit(["data/digits/0/0000.png"])  # doctest: +SKIP
    >>> pre.transform(["data/digits/0/0000.png"]).shape  # doctest: +SKIP
    torch.Size([1, 1, 8, 8])
    """

    def __init__(self, *, size: int, mean: float = 0.0, std: float = 1.0) -> None:
        self.size = int(size)
        self.mean = float(mean)
        self.std = float(std)

    def _scaled(self, images: Sequence[ImageInput]) -> torch.Tensor:
        if len(images) == 0:
            raise DataError("no images to preprocess")
        tensors = []
        for position, item in enumerate(images):
            tensor = _decode(item, position)
            if tensor.shape[-2:] != (self.size, self.size):
                tensor = F.resize(tensor, [self.size, self.size], antialias=True)
            tensors.append(tensor)
        return F.to_dtype(torch.stack(tensors), torch.float32, scale=True)

    def fit(self, images: Sequence[ImageInput]) -> ImagePreprocessor:
        self.fit_transform(images)
        return self

    def fit_transform(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """Learn mean and std from ``images`` and return them transformed (one decode)."""
        pixels = self._scaled(images)
        self.mean = float(pixels.mean())
        self.std = float(pixels.std()) or 1.0
        return F.normalize(pixels, mean=[self.mean], std=[self.std])

    def transform(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """A float32 tensor of shape (N, 1, size, size)."""
        return F.normalize(self._scaled(images), mean=[self.mean], std=[self.std])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, self.size, self.size)

    def state(self) -> dict[str, Any]:
        return {"kind": "image", "size": self.size, "mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ImagePreprocessor:
        if state.get("kind") != "image":
            raise DataError(f"not an image preprocessor state: {state!r}")
        return cls(size=state["size"], mean=state["mean"], std=state["std"])


def preprocessor_from_state(state: dict[str, Any]):
    """Rebuild a saved preprocessor, image or table."""
    if state.get("kind") == "table":
        from mllife.preprocess.tables import TablePreprocessor

        return TablePreprocessor.from_state(state)
    return ImagePreprocessor.from_state(state)
