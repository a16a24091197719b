"""A stored model's class probabilities on the sealed test rows, kept once computed.

A model's inference is a function of its artifact (the model hash) and the rows: the same
model on the same test rows gives the same probabilities. Re-deciding a promotion (a
policy edit, a new champion to compare with) therefore needs neither the model nor its
inputs again, and an image model's re-decision no longer imports torch and torchvision
(~3 s) for predictions it made before. An entry is keyed by the model hash, the data
and split versions, and holds the rows' keys in the order predicted: rows that differ in
any way are a miss. Entries prove their content (``array_cache``); every use is still a
recorded read of the sealed test set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl

from mllife.config.project import ProjectConfig
from mllife.data.split import SplitSet
from mllife.storage.array_cache import read_array, write_array

__all__ = ["cached_test_proba", "remember_test_proba"]


def _entry(config: ProjectConfig, model_hash: str, splits: SplitSet) -> Path:
    versions = hashlib.sha256(f"{splits.data_version}\n{splits.split_version}".encode())
    folder = config.state_dir / "cache" / "test-proba"
    return folder / f"{model_hash}-{versions.hexdigest()[:24]}"


def _keys(rows: pl.DataFrame, key: str) -> np.ndarray | None:
    return rows[key].cast(pl.String).to_numpy().astype(str) if key in rows.columns else None


def cached_test_proba(
    config: ProjectConfig, model_hash: str, splits: SplitSet, rows: pl.DataFrame
) -> tuple[list, np.ndarray] | None:
    """(classes, probabilities) of ``model_hash`` on ``rows`` (the test rows of
    ``splits``, in this order), when computed before; None otherwise."""
    keys = _keys(rows, splits.key)
    if keys is None:
        return None
    entry = _entry(config, model_hash, splits)
    stored_keys = read_array(entry.with_suffix(".keys.npy"))
    if stored_keys is None or not np.array_equal(stored_keys, keys):
        return None
    classes = read_array(entry.with_suffix(".classes.npy"))
    proba = read_array(entry.with_suffix(".proba.npy"))
    if classes is None or proba is None or proba.shape != (len(keys), len(classes)):
        return None
    return classes.tolist(), proba


def remember_test_proba(
    config: ProjectConfig,
    model_hash: str,
    splits: SplitSet,
    rows: pl.DataFrame,
    classes,
    proba: np.ndarray,
) -> None:
    keys, labels = _keys(rows, splits.key), np.asarray(classes)
    if keys is None or labels.dtype == object:  # mixed label types: not kept
        return
    entry = _entry(config, model_hash, splits)
    entry.parent.mkdir(parents=True, exist_ok=True)
    # the keys last: an entry whose keys are readable is whole
    write_array(entry.with_suffix(".classes.npy"), labels)
    write_array(entry.with_suffix(".proba.npy"), np.asarray(proba))
    write_array(entry.with_suffix(".keys.npy"), keys)
