"""Batch drift: the data that arrived since the champion was deployed, against the
training data it learned from. (Served inputs join once predictions are logged.)"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from mllife.config import ProjectConfig
from mllife.drift import DriftReport, drift, image_statistics
from mllife.inputs import load_inputs
from mllife.split import SplitSet, split_namespace
from mllife.store import Store

__all__ = ["BatchDrift", "batch_drift"]


@dataclass(frozen=True)
class BatchDrift:
    report: DriftReport | None
    n_reference: int
    n_current: int
    reason: str


def _features(config: ProjectConfig, splits: SplitSet, rows: pl.DataFrame) -> pl.DataFrame:
    if config.data.kind == "images":
        return image_statistics(load_inputs(rows, root=config.root))
    return rows.select(list(splits.columns))


def batch_drift(config: ProjectConfig, store: Store, splits: SplitSet) -> BatchDrift:
    champion = store.champion()
    if champion is None:
        return BatchDrift(None, 0, 0, "no champion deployed yet: nothing to compare with")
    assigned = store.query(
        "SELECT key, assigned_at FROM split_assignments WHERE namespace = ?",
        [split_namespace(config.split)],
    ).with_columns(pl.col("key").cast(pl.String))
    rows = splits.rows.with_columns(pl.col(splits.key).cast(pl.String).alias("_key")).join(
        assigned, left_on="_key", right_on="key", how="left"
    )
    seen = pl.col("assigned_at") <= champion.created_at
    reference = rows.filter(seen & (pl.col("split") == "train"))
    current = rows.filter(~seen)
    if current.height == 0:
        return BatchDrift(None, reference.height, 0, "no new data since the champion was deployed")
    report = drift(_features(config, splits, reference), _features(config, splits, current))
    return BatchDrift(
        report,
        reference.height,
        current.height,
        f"{current.height} rows arrived since the champion's deployment; {report.summary()}",
    )
