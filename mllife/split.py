"""Deterministic, stratified, stable train/validation/test assignment.

Two promises pull against each other: *stratified* (each class's test share within a
point of the target) and *stable* (a row never changes split as data grows). A pure
hash threshold is stable but only stratified on average (+-3 points at 100 rows per
class). So assignments are remembered: rows seen before keep their split, and new rows
of each class fill that class's shortfall towards the target counts, in the order of a
seeded hash of their key. From an empty history this is plain per-class stratification
by hash rank, reproducible from the data and seed alone.

Keys are content hashes (or a declared id), so identical content can never land in two
splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from mllife.config import SplitConfig

__all__ = [
    "SPLITS",
    "SplitSet",
    "assign_splits",
    "leaking_keys",
    "split_namespace",
    "split_version",
]

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitSet:
    """Clean rows with their ``split`` column, and the versions they descend from."""

    rows: pl.DataFrame
    data_version: str
    split_version: str
    key: str = "sha256"
    #: tables: the feature contract (name -> ColumnConfig); None for images
    columns: dict | None = None

    def sizes(self) -> dict[str, int]:
        counts = dict(self.rows.group_by("split").len().iter_rows())
        return {name: int(counts.get(name, 0)) for name in SPLITS}


def split_namespace(config: SplitConfig) -> str:
    """Remembered assignments are only reused under the same seed and ratios."""
    return f"seed={config.seed};ratios={config.train:g}/{config.validation:g}/{config.test:g}"


def _unit_interval(keys: list[str], seed: int) -> np.ndarray:
    """Map each key to a uniform number in [0, 1) through sha256(seed:key)."""
    prefix = f"{seed}:".encode()
    out = np.empty(len(keys), dtype=np.float64)
    for i, key in enumerate(keys):
        digest = hashlib.sha256(prefix + key.encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2.0**64
    return out


def _target_counts(total: int, ratios: np.ndarray) -> np.ndarray:
    """Integer counts per split summing to ``total`` (largest remainder)."""
    exact = ratios * total
    counts = np.floor(exact).astype(np.int64)
    short = total - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


def assign_splits(
    frame: pl.DataFrame,
    config: SplitConfig,
    *,
    key: str = "sha256",
    label: str = "label",
    previous: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """Return ``frame`` with a ``split`` column: ``train``, ``validation`` or ``test``.

    ``previous`` maps keys to the split they were given before (same namespace); those
    rows keep it. New rows fill each class's shortfall towards the configured ratios.
    """
    if key not in frame.columns:
        raise KeyError(f"cannot split: the frame has no key column {key!r} ({frame.columns})")
    previous = previous or {}
    ratios = np.array([config.train, config.validation, config.test])
    keys = frame[key].to_list()
    labels = frame[label].to_list()
    u = _unit_interval(keys, config.seed)
    result = np.array([previous.get(k, "") for k in keys], dtype=object)
    by_class: dict[str, list[int]] = {}
    for i, lbl in enumerate(labels):
        by_class.setdefault(lbl, []).append(i)
    for rows in by_class.values():
        rows_array = np.array(rows)
        known = result[rows_array] != ""
        have = np.array([(result[rows_array] == s).sum() for s in SPLITS])
        need = np.maximum(_target_counts(len(rows), ratios) - have, 0)
        new_rows = rows_array[~known]
        if len(new_rows) == 0:
            continue
        # Shortfalls may exceed the new rows (or fall short after earlier drift): share
        # the new rows out in proportion to what each split still needs.
        weights = need if need.sum() else ratios
        take = _target_counts(len(new_rows), weights / weights.sum())
        ordered = new_rows[np.argsort(u[new_rows], kind="stable")]
        bounds = np.cumsum(take)
        for split, part in zip(SPLITS, np.split(ordered, bounds[:-1]), strict=True):
            result[part] = split
    return frame.with_columns(pl.Series("split", result.astype(str), dtype=pl.String))


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
