"""Rows of a split as model inputs: bytes read once and checked against the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from mllife._errors import DataError
from mllife.data.decode import COLOUR_MODES
from mllife.data.split import SPLITS

if TYPE_CHECKING:  # both import torch: loaded with the first images, not with the graph
    from mllife.preprocess.images import ImagePreprocessor
    from mllife.preprocess.pixels import PixelSet

__all__ = [
    "image_channels",
    "load_inputs",
    "make_preprocessor",
    "model_inputs",
    "pixel_set",
    "split_rows",
]


def split_rows(splits: pl.DataFrame, name: str) -> pl.DataFrame:
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
    rows = splits.filter(pl.col("split") == name)
    if rows.height == 0:
        raise DataError(
            f"the {name} split is empty ({splits.height} rows in all); add data or change"
            " the [split] ratios"
        )
    return rows


def load_inputs(rows: pl.DataFrame, *, root: Path) -> list[bytes]:
    """The encoded bytes of each row's file, verified against its manifest hash."""
    from mllife.preprocess.pixels import read_verified

    return [read_verified(p, h, root=root) for p, h in rows.select("path", "sha256").iter_rows()]


def model_inputs(rows: pl.DataFrame, *, config, columns=None, preprocessor=None):
    """What a model receives for these rows: the table's feature columns, or the images
    as a :class:`PixelSet` (decoded by ``preprocessor`` -- the model's own -- and cached),
    or, without a preprocessor, their encoded bytes (the raw form serving receives).
    """
    if config.data.kind != "images":
        return rows.select(list(columns))
    if preprocessor is None:
        return load_inputs(rows, root=config.root)
    return pixel_set(rows, config=config, preprocessor=preprocessor)


def pixel_set(rows: pl.DataFrame, *, config, preprocessor: ImagePreprocessor) -> PixelSet:
    """``rows``' images streamed through ``preprocessor``, cached under ``.mllife/cache``."""
    from mllife.preprocess.pixels import PixelCache, PixelSet, loader_workers

    pixels = PixelSet(
        rows,
        root=config.root,
        preprocessor=preprocessor,
        cache=PixelCache(config.state_dir / "cache" / "pixels"),
        workers=loader_workers(config.training.loader_workers),
    )
    pixels.memory_limit = config.training.pixel_memory_mb * 2**20
    return pixels


def image_channels(config, rows: pl.DataFrame | None) -> int:
    """The channels models see: as configured, else 3 when any image is in colour."""
    if config.data.channels != "auto":
        return int(config.data.channels)
    if rows is None or "mode" not in rows.columns:
        return 1
    modes = set(rows["mode"].drop_nulls().unique().to_list())
    return 3 if modes & COLOUR_MODES else 1


def make_preprocessor(config, columns=None, rows: pl.DataFrame | None = None):
    """The project's preprocessing, unfitted: for images its size, channels (from
    ``rows``' modes when "auto") and resize rule; for tables its column contract."""
    if config.data.kind == "images":
        from mllife.preprocess.images import ImagePreprocessor

        return ImagePreprocessor(
            size=config.data.image_size,
            channels=image_channels(config, rows),
            resize=config.data.resize,
        )
    from mllife.data.derived import derived_features
    from mllife.preprocess.tables import TablePreprocessor

    derived = derived_features(config)
    if derived is not None:  # the columns it made in raw_data, marked in the contract
        derived = derived.trained([n for n, spec in columns.items() if spec.derived])
    return TablePreprocessor(columns=dict(columns), derived=derived)
