"""The one image preprocessing used by training, evaluation, serving and the gallery.

It is saved inside every model artifact, so a served prediction decodes, orients,
resizes and normalises an input with exactly the code and statistics the model was
trained with. Decoding follows ``mllife.data.decode`` (EXIF orientation, first frame,
mode conversion, pixel budget, JPEG draft mode).

Two steps, so that the costly one can be cached and streamed:

- :meth:`ImagePreprocessor.pixels`: decode and resize to ``uint8`` tensors of shape
  (N, channels, size, size) -- what the on-disk pixel cache keeps;
- :meth:`ImagePreprocessor.normalize`: to float32, per-channel mean/std (learned from the
  training pixels, or a pretrained backbone's own).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mllife._errors import DataError
from mllife.data.decode import DEFAULT_MAX_PIXELS, ImageFileError, open_image, to_channels

__all__ = ["RESIZE_MODES", "ImageInput", "ImagePreprocessor", "preprocessor_from_state"]

#: What a model accepts as one image: a file path, encoded bytes, a PIL image, or a
#: 2-D (H, W) / 3-D (H, W, C) uint8 array.
ImageInput = str | Path | bytes | Image.Image | np.ndarray
#: crop: shorter side to ``size``, centre crop (no distortion); pad: longer side to
#: ``size``, padded with black; squash: both sides to ``size`` (artifacts made before
#: colour support, which squashed)
RESIZE_MODES = ("crop", "pad", "squash")
#: images per decode batch in transform(): bounds memory for large inputs
CHUNK = 256


def _as_image(item: ImageInput, position: int, size: int) -> Image.Image:
    if isinstance(item, (str, Path, bytes)):
        what = str(item) if not isinstance(item, bytes) else f"image {position}"
        return open_image(item, draft_to=size, what=what, max_pixels=DEFAULT_MAX_PIXELS)
    if isinstance(item, Image.Image):
        return item
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise DataError(f"image {position}: arrays must be uint8 (0..255), got {item.dtype}")
        return Image.fromarray(item)
    raise DataError(
        f"image {position}: unsupported input type {type(item).__name__}; pass a path,"
        " bytes, a PIL image or a uint8 array"
    )


def _transforms():
    """torchvision's functional transforms (v2), imported when first needed: importing
    torchvision takes ~1.2 s (its ops pull in torch._dynamo), which loading a table model
    (whose base class knows image preprocessing) never needs."""
    from torchvision.transforms.v2 import functional

    return functional


class ImagePreprocessor:
    """Decode, orient, convert to ``channels`` (1 or 3), resize to ``size`` x ``size``
    (``resize``: crop, pad or squash), scale to [0, 1] and normalise per channel.

    Examples
    --------
    >>> pre = ImagePreprocessor(size=32, channels=3)  # doctest: +SKIP
    >>> pre.fit_transform(["cat.jpg", "dog.jpg"]).shape  # doctest: +SKIP
    torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        *,
        size: int,
        channels: int = 1,
        resize: str = "crop",
        mean: float | Sequence[float] = 0.0,
        std: float | Sequence[float] = 1.0,
    ) -> None:
        if channels not in (1, 3):
            raise DataError(f"channels must be 1 or 3, got {channels!r}")
        if resize not in RESIZE_MODES:
            raise DataError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        self.size = int(size)
        self.channels = int(channels)
        self.resize = resize
        self.mean = self._per_channel(mean)
        self.std = self._per_channel(std)

    def _per_channel(self, value: float | Sequence[float]) -> list[float]:
        values = [float(value)] * self.channels if np.isscalar(value) else [float(v) for v in value]
        if len(values) != self.channels:
            raise DataError(f"{len(values)} normalisation values for {self.channels} channels")
        return values

    # -- decoding ------------------------------------------------------------------------

    def _fit(self, tensor: torch.Tensor) -> torch.Tensor:
        """(C, H, W) uint8 -> (C, size, size) by the resize rule."""
        s = self.size
        height, width = tensor.shape[-2:]
        if (height, width) == (s, s):
            return tensor
        F = _transforms()
        if self.resize == "squash":
            return F.resize(tensor, [s, s], antialias=True)
        if self.resize == "crop":
            short = min(height, width)
            new = [max(s, round(height * s / short)), max(s, round(width * s / short))]
            return F.center_crop(F.resize(tensor, new, antialias=True), [s, s])
        long = max(height, width)
        new = [max(1, round(height * s / long)), max(1, round(width * s / long))]
        tensor = F.resize(tensor, new, antialias=True)
        top, left = (s - new[0]) // 2, (s - new[1]) // 2
        return F.pad(tensor, [left, top, s - new[1] - left, s - new[0] - top], fill=0)

    def pixel(self, item: ImageInput, position: int = 0) -> torch.Tensor:
        """One image as uint8 (channels, size, size)."""
        try:
            array = to_channels(_as_image(item, position, self.size), self.channels)
        except ImageFileError:
            raise
        except (OSError, ValueError) as exc:
            raise DataError(f"image {position} cannot be decoded: {exc}") from exc
        tensor = torch.from_numpy(np.array(array, dtype=np.uint8, order="C"))  # owned, writable
        tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        return self._fit(tensor).contiguous()

    def pixels(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """uint8 tensor (N, channels, size, size)."""
        if len(images) == 0:
            raise DataError("no images to preprocess")
        return torch.stack([self.pixel(item, i) for i, item in enumerate(images)])

    # -- normalising ---------------------------------------------------------------------

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, S, S) -> float32, scaled to [0, 1] and normalised per channel.

        The same operations, in the same order, as torchvision's ``to_dtype(scale=True)``
        and ``normalize`` (so the same floats), without importing torchvision: images
        that need no resize (the digits, a served batch of the trained size) then never
        pay its ~3 s import."""
        if 0.0 in self.std:
            raise DataError(f"a normalisation std of 0 divides by zero: {self.std}")
        if pixels.dtype == torch.uint8:
            scaled = pixels.to(torch.float32).mul_(1.0 / 255)
        elif pixels.is_floating_point():  # already scaled: as torchvision, only the dtype
            scaled = pixels.to(torch.float32)
        else:
            raise DataError(f"pixels must be uint8 (0..255) or floats, got {pixels.dtype}")
        mean = torch.as_tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return scaled.sub(mean).div_(std)

    def fit_stats(self, batches: Iterable[torch.Tensor]) -> ImagePreprocessor:
        """Learn per-channel mean and std from uint8 batches (one pass, any size)."""
        total = torch.zeros(self.channels, dtype=torch.float64)
        squares = torch.zeros(self.channels, dtype=torch.float64)
        count = 0
        for batch in batches:
            values = batch.to(torch.float64) / 255.0
            total += values.sum(dim=(0, 2, 3))
            squares += (values * values).sum(dim=(0, 2, 3))
            count += values.shape[0] * values.shape[2] * values.shape[3]
        if count == 0:
            raise DataError("no images to learn the normalisation from")
        mean = total / count
        std = (squares / count - mean * mean).clamp_min(0).sqrt()
        self.mean = [float(m) for m in mean]
        self.std = [float(s) if s > 1e-8 else 1.0 for s in std]
        return self

    def fit(self, images: Sequence[ImageInput]) -> ImagePreprocessor:
        self.fit_transform(images)
        return self

    def fit_transform(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """Learn mean and std from ``images`` and return them transformed (one decode)."""
        pixels = self.pixels(images)
        self.fit_stats([pixels])
        return self.normalize(pixels)

    def transform(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """A float32 tensor of shape (N, channels, size, size); decoded in chunks."""
        if len(images) == 0:
            raise DataError("no images to preprocess")
        parts = [
            self.normalize(self.pixels(images[start : start + CHUNK]))
            for start in range(0, len(images), CHUNK)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.channels, self.size, self.size)

    @property
    def settings_key(self) -> str:
        """What decoded pixels depend on (the pixel cache's key, with the content)."""
        return f"{self.size}-{self.channels}-{self.resize}"

    def with_normalization(self, mean: Sequence[float], std: Sequence[float]):
        """A copy normalising with given values (a pretrained backbone's own)."""
        return ImagePreprocessor(
            size=self.size, channels=self.channels, resize=self.resize, mean=mean, std=std
        )

    def state(self) -> dict[str, Any]:
        return {
            "kind": "image",
            "size": self.size,
            "channels": self.channels,
            "resize": self.resize,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ImagePreprocessor:
        if state.get("kind") != "image":
            raise DataError(f"not an image preprocessor state: {state!r}")
        # artifacts from before colour support: one channel, squashed, scalar stats
        return cls(
            size=state["size"],
            channels=state.get("channels", 1),
            resize=state.get("resize", "squash"),
            mean=state["mean"],
            std=state["std"],
        )


def preprocessor_from_state(state: dict[str, Any]):
    """Rebuild a saved preprocessor, image or table."""
    if state.get("kind") == "table":
        from mllife.preprocess.tables import TablePreprocessor

        return TablePreprocessor.from_state(state)
    return ImagePreprocessor.from_state(state)
