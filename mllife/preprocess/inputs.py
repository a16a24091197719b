"""Rows of a split as model inputs: bytes read once and checked against the manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from mllife._errors import DataError
from mllife.data.split import SPLITS

__all__ = ["load_inputs", "make_preprocessor", "model_inputs", "split_rows"]


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
    """The encoded bytes of each row's file, verified against its manifest hash.

    Lineage promises that a model trains on exactly the files ``raw_data`` recorded; a
    file changed since then is an error, not a silent substitution.
    """
    payloads = []
    for path, expected in rows.select("path", "sha256").iter_rows():
        file = Path(path) if Path(path).is_absolute() else root / path
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
        payloads.append(payload)
    return payloads


def model_inputs(rows: pl.DataFrame, *, config, columns=None):
    """What a model receives for these rows: image bytes, or the table's feature columns.

    The same raw form serving receives, so training, evaluation and serving share the
    model's own preprocessing.
    """
    if config.data.kind == "images":
        return load_inputs(rows, root=config.root)
    return rows.select(list(columns))


def make_preprocessor(config, columns=None):
    if config.data.kind == "images":
        from mllife.preprocess.images import ImagePreprocessor

        return ImagePreprocessor(size=config.data.image_size)
    from mllife.preprocess.tables import TablePreprocessor

    return TablePreprocessor(columns=dict(columns))
