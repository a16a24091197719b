"""Images of a split streamed as decoded pixels, cached on disk.

Decoding a photo costs far more than training on its small version, and every epoch,
every candidate and every run would decode it again. :class:`PixelCache` keeps each
image's decoded, resized ``uint8`` pixels keyed by (content hash, preprocessing
settings), so a second epoch, a second candidate and a second run read a few KB instead
of decoding a JPEG. :class:`PixelSet` is a ``torch.utils.data.Dataset`` over a split's
rows: memory holds one batch, not the data set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import torch
from torch.utils.data import DataLoader, Dataset

from mllife._cpus import usable_cpus
from mllife._errors import DataError
from mllife.preprocess.images import ImagePreprocessor
from mllife.storage.array_cache import read_array, write_array

__all__ = ["PixelCache", "PixelSet", "loader_workers", "read_verified"]


def loader_workers(setting: int | str = "auto") -> int:
    """DataLoader worker processes: as configured, or one per usable CPU beyond two
    (max 8)."""
    if setting != "auto":
        return int(setting)
    return max(0, min(8, usable_cpus() - 2))


def read_verified(path: str | Path, expected: str, *, root: Path) -> bytes:
    """A manifest row's file, checked against the sha256 ``raw_data`` recorded: lineage
    promises that a model trains on exactly those files; a file changed since then is
    an error, not a silent substitution."""
    path = Path(path)
    file = path if path.is_absolute() else Path(root) / path
    try:
        payload = file.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{path} was in the raw_data manifest but is gone; re-materialize raw_data"
        ) from None
    if hashlib.sha256(payload).hexdigest() != expected:
        raise DataError(
            f"{path} changed since raw_data was materialized (hash mismatch);"
            " re-materialize raw_data and the assets after it"
        )
    return payload


class PixelCache:
    """``<folder>/<settings>/<sha[:2]>/<sha>.npy``: one image's uint8 (C, S, S) pixels."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, sha256: str, settings_key: str) -> Path:
        return self.folder / settings_key / sha256[:2] / f"{sha256}.npy"

    def get(self, sha256: str, settings_key: str) -> torch.Tensor | None:
        # verified: an entry changed on disk is decoded again (with a warning), never used
        pixels = read_array(self.path(sha256, settings_key))
        return None if pixels is None else torch.from_numpy(pixels)

    def put(self, sha256: str, settings_key: str, pixels: torch.Tensor) -> None:
        write_array(self.path(sha256, settings_key), pixels.numpy())


class PixelSet(Dataset):
    """The images of ``rows`` (columns ``path`` and ``sha256``) as uint8 tensors
    (channels, size, size), decoded by ``preprocessor`` and cached in ``cache``. Each
    file is checked against its manifest hash when it is read."""

    def __init__(
        self,
        rows: pl.DataFrame,
        *,
        root: Path,
        preprocessor: ImagePreprocessor,
        cache: PixelCache | None,
        workers: int = 0,
    ) -> None:
        self.paths = rows["path"].to_list()
        self.hashes = rows["sha256"].to_list()
        self.root = Path(root)
        self.preprocessor = preprocessor
        self.cache = cache
        self.workers = workers
        self.decoded = 0  # images decoded (not served from the cache) in this process
        #: bytes of pixels this set may hold in memory (see :meth:`held`)
        self.memory_limit = 0
        self._held: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, index: int) -> bytes:
        return read_verified(self.paths[index], self.hashes[index], root=self.root)

    def held(self) -> torch.Tensor | None:
        """All pixels as one uint8 tensor when they fit in ``memory_limit`` (read once,
        then every epoch indexes memory instead of reading one cache file per image);
        None for a set too large, which is streamed."""
        c, s = self.preprocessor.channels, self.preprocessor.size
        if self._held is None and len(self) * c * s * s <= self.memory_limit:
            self._held = self.all()
        return self._held

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._held is not None:
            return self._held[index]
        key = self.preprocessor.settings_key
        if self.cache is not None:
            cached = self.cache.get(self.hashes[index], key)
            if cached is not None:
                return cached
        pixels = self.preprocessor.pixel(self._read(index), index)
        self.decoded += 1
        if self.cache is not None:
            self.cache.put(self.hashes[index], key, pixels)
        return pixels

    def batches(self, batch_size: int = 256) -> Iterator[torch.Tensor]:
        """The pixels in order, ``batch_size`` at a time."""
        loader = DataLoader(
            self,
            batch_size=batch_size,
            shuffle=False,
            num_workers=self.workers,
            persistent_workers=False,
        )
        yield from loader

    def all(self) -> torch.Tensor:
        """Every image's pixels in one tensor (for estimators that need a matrix)."""
        return torch.cat(list(self.batches()))

    def with_preprocessor(self, preprocessor: ImagePreprocessor) -> PixelSet:
        """The same rows through another preprocessing (sharing the cache)."""
        other = PixelSet.__new__(PixelSet)
        other.__dict__.update(self.__dict__)
        other.preprocessor = preprocessor
        other.decoded, other._held = 0, None
        return other
