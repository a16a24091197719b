"""Deterministic, hash-based train/validation/test assignment.

A row's split depends only on its stable key (the content hash) and the seed, so a row
keeps its split forever as the data grows, and identical content can never land in two
splits. The test set is "sealed": reading it goes through :func:`mllife.store` helpers
that record every look.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from mllife.config import SplitConfig

__all__ = ["SPLITS", "SplitSet", "assign_splits", "leaking_keys", "split_version"]

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitSet:
    """Clean rows with their ``split`` column, and the versions they descend from."""

    rows: pl.DataFrame
    data_version: str
    split_version: str

    def sizes(self) -> dict[str, int]:
        counts = dict(self.rows.group_by("split").len().iter_rows())
        return {name: int(counts.get(name, 0)) for name in SPLITS}


def _unit_interval(keys: list[str], seed: int) -> np.ndarray:
    """Map each key to a uniform number in [0, 1) through sha256(seed:key)."""
    prefix = f"{seed}:".encode()
    out = np.empty(len(keys), dtype=np.float64)
    for i, key in enumerate(keys):
        digest = hashlib.sha256(prefix + key.encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2.0**64
    return out


def assign_splits(frame: pl.DataFrame, config: SplitConfig, *, key: str = "sha256") -> pl.DataFrame:
    """Return ``frame`` with a ``split`` column: ``train``, ``validation`` or ``test``."""
    if key not in frame.columns:
        raise KeyError(f"cannot split: the frame has no key column {key!r} ({frame.columns})")
    u = _unit_interval(frame[key].to_list(), config.seed)
    edges = np.array([config.train, config.train + config.validation])
    codes = np.searchsorted(edges, u, side="right")
    return frame.with_columns(pl.Series("split", np.array(SPLITS)[codes], dtype=pl.String))


def split_version(frame: pl.DataFrame, *, key: str = "sha256") -> str:
    """A content hash of the assignment (key -> split), independent of row order."""
    pairs = frame.select(key, "split").sort(key)
    digest = hashlib.sha256()
    for k, s in pairs.iter_rows():
        digest.update(f"{k}\t{s}\n".encode())
    return digest.hexdigest()


def leaking_keys(frame: pl.DataFrame, *, key: str = "sha256") -> list[str]:
    """Keys that appear in more than one split (should always be empty)."""
    counts = frame.group_by(key).agg(pl.col("split").n_unique().alias("n"))
    return counts.filter(pl.col("n") > 1)[key].to_list()
