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
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from mllife.config.project import ProjectConfig, SplitConfig
from mllife.data.near_duplicates import NearDuplicates
from mllife.storage.files import write_atomically

__all__ = [
    "MIN_PER_CLASS",
    "save_split_manifest",
    "SPLITS",
    "SplitSet",
    "assign_splits",
    "leaking_keys",
    "split_namespace",
    "split_version",
]

#: rows (or images) of each class an 80/10/10 split needs so that validation and test
#: each can hold at least one of them
MIN_PER_CLASS = 10

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
    #: near-duplicates across and within splits (None: the search is off)
    near_duplicates: NearDuplicates | None = None

    def sizes(self) -> dict[str, int]:
        counts = dict(self.rows.group_by("split").len().iter_rows())
        return {name: int(counts.get(name, 0)) for name in SPLITS}


def split_namespace(config: SplitConfig) -> str:
    """Remembered assignments are only reused under the same seed, ratios and grouping."""
    ratios = f"{config.train:g}/{config.validation:g}/{config.test:g}"
    grouping = config.group or config.group_pattern or config.group_manifest
    return f"seed={config.seed};ratios={ratios}" + (f";group={grouping}" if grouping else "")


def assign_groups(groups: pl.Series, config: SplitConfig) -> np.ndarray:
    """Each row's split from its group's name and the seed alone: every row of a group
    lands in the same split, a group never moves as data grows, and the shares of
    groups follow the ratios (of rows only as far as groups are alike in size)."""
    names = groups.cast(pl.String)
    unique = names.unique(maintain_order=True)
    u = _unit_interval(unique, config.seed)  # each group hashed once, not each row
    edges = np.cumsum([config.train, config.validation])
    chosen = np.array(SPLITS)[np.searchsorted(edges, u, side="right")]
    return names.replace_strict(unique, pl.Series(chosen, dtype=pl.String)).to_numpy()


_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fixed, well-mixed 64-bit integer hash (wrapping arithmetic, vectorized)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _unit_interval(keys: pl.Series, seed: int) -> np.ndarray:
    """Map each key to a uniform number in [0, 1), fixed by the key and the seed.

    Content-hash keys (hex) are read directly; other keys (ids) are sha256-hashed first.
    """
    text = keys.cast(pl.String)
    hex_keys = text.str.contains(r"^[0-9a-f]{15,}$").all()
    if hex_keys:
        bits = text.str.slice(0, 15).str.to_integer(base=16).cast(pl.UInt64).to_numpy()
    else:
        bits = np.array(
            [
                int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big") >> 4
                for k in text.to_list()
            ],
            dtype=np.uint64,
        )
    with np.errstate(over="ignore"):
        mixed = _splitmix64(bits ^ _splitmix64(np.full(len(bits), seed, dtype=np.uint64)))
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


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
    groups: pl.Series | None = None,
) -> pl.DataFrame:
    """Return ``frame`` with a ``split`` column: ``train``, ``validation`` or ``test``.

    ``previous`` maps keys to the split they were given before (same namespace); those
    rows keep it. New rows fill each class's shortfall towards the configured ratios.
    With ``groups`` (one name per row) whole groups are assigned (:func:`assign_groups`).
    """
    if key not in frame.columns:
        raise KeyError(f"cannot split: the frame has no key column {key!r} ({frame.columns})")
    if groups is not None:
        split = assign_groups(groups, config)
        return frame.with_columns(pl.Series("split", split.astype(str), dtype=pl.String))
    previous = previous or {}
    ratios = np.array([config.train, config.validation, config.test])
    u = _unit_interval(frame[key], config.seed)
    known = (
        pl.Series(
            [previous.get(k, "") for k in frame[key].cast(pl.String).to_list()]
            if previous
            else [""] * frame.height,
            dtype=pl.String,
        )
        .to_numpy()
        .astype(object)
    )
    result = known.copy()
    classes, class_of = np.unique(frame[label].to_numpy().astype(str), return_inverse=True)
    order = np.argsort(class_of, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(class_of, minlength=len(classes)))])
    for c in range(len(classes)):
        rows_array = order[bounds[c] : bounds[c + 1]]
        assigned = known[rows_array]
        have = np.array([(assigned == s).sum() for s in SPLITS])
        need = np.maximum(_target_counts(len(rows_array), ratios) - have, 0)
        new_rows = rows_array[assigned == ""]
        if len(new_rows) == 0:
            continue
        # Shortfalls may exceed the new rows (or fall short after earlier drift): share
        # the new rows out in proportion to what each split still needs.
        weights = need if need.sum() else ratios
        take = _target_counts(len(new_rows), weights / weights.sum())
        ordered = new_rows[np.argsort(u[new_rows], kind="stable")]
        for split, part in zip(SPLITS, np.split(ordered, np.cumsum(take)[:-1]), strict=True):
            result[part] = split
    return frame.with_columns(pl.Series("split", result.astype(str), dtype=pl.String))


def split_version(frame: pl.DataFrame, *, key: str = "sha256") -> str:
    """A content hash of the assignment (key -> split), independent of row order."""
    pairs = (
        frame.select(pl.concat_str([pl.col(key).cast(pl.String), pl.col("split")], separator="\t"))
        .to_series()
        .sort()
    )
    return hashlib.sha256("\n".join(pairs.to_list()).encode()).hexdigest()


def leaking_keys(frame: pl.DataFrame, *, key: str = "sha256") -> list[str]:
    """Keys that appear in more than one split (should always be empty)."""
    counts = frame.group_by(key).agg(pl.col("split").n_unique().alias("n"))
    return counts.filter(pl.col("n") > 1)[key].to_list()


def save_split_manifest(config: ProjectConfig, splits: SplitSet) -> Path:
    """``artifacts/splits/<split_version>.parquet``: which row went to which split, kept
    with the models (and versioned with them by DVC) so a past model's exact training
    rows can be named."""
    path = config.artifacts_dir / "splits" / f"{splits.split_version}.parquet"
    if not path.is_file():
        buffer = io.BytesIO()
        splits.rows.select(splits.key, "label", "split").write_parquet(buffer)
        write_atomically(path, buffer.getvalue())
    return path
