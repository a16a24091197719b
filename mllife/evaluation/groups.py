"""Quality per group of people (ML Test Score, Model 7): accuracy with its interval and
recall per class for each value of a column (sex, age band, region), and the largest gap
between two groups with an interval of the difference, so a gap chance explains is not
reported as a finding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from mllife._errors import ConfigError
from mllife.metrics import difference_interval, wilson_interval
from mllife.preprocess.inputs import split_rows

__all__ = ["GroupGap", "GroupQuality", "group_quality", "grouped_rows"]

#: a group smaller than this is listed but never part of a gap (its interval is too wide)
MIN_GROUP_ROWS = 10


@dataclass(frozen=True)
class GroupQuality:
    group: str
    n: int
    accuracy: float
    low: float
    high: float
    #: recall per class present in the group
    recall: dict[str, float]


@dataclass(frozen=True)
class GroupGap:
    better: str
    worse: str
    gap: float
    low: float
    high: float

    @property
    def beyond_chance(self) -> bool:
        return self.low > 0


def group_quality(
    y_true, y_pred, groups, *, min_rows: int = MIN_GROUP_ROWS
) -> tuple[list[GroupQuality], GroupGap | None]:
    """Per group (largest first): accuracy with a Wilson interval and recall per class;
    and the largest accuracy gap between two groups of at least ``min_rows`` rows, with
    Newcombe's interval (None when fewer than two such groups)."""
    y_true = np.asarray(y_true, dtype=str)
    y_pred = np.asarray(y_pred, dtype=str)
    groups = np.asarray(["<missing>" if g is None else str(g) for g in groups], dtype=object)
    if not (len(y_true) == len(y_pred) == len(groups)):
        raise ValueError(
            f"y_true, y_pred and groups need one value per row: {len(y_true)},"
            f" {len(y_pred)} and {len(groups)}"
        )
    names, counts = np.unique(groups, return_counts=True)
    result = []
    for name in names[np.argsort(-counts, kind="stable")]:
        mask = groups == name
        right = y_true[mask] == y_pred[mask]
        n = int(mask.sum())
        low, high = wilson_interval(float(right.sum()), n, 0.95)
        recall = {str(c): float(right[y_true[mask] == c].mean()) for c in np.unique(y_true[mask])}
        result.append(GroupQuality(str(name), n, float(right.mean()), low, high, recall))
    large = [g for g in result if g.n >= min_rows]
    if len(large) < 2:
        return result, None
    # sorted, not max and min: with every group equally accurate the two must still
    # be two groups (the largest first)
    ranked = sorted(large, key=lambda g: -g.accuracy)
    best, worst = ranked[0], ranked[-1]
    gap, low, high = difference_interval(best.accuracy, best.n, worst.accuracy, worst.n)
    return result, GroupGap(best.group, worst.group, gap, low, high)


def grouped_rows(splits, split: str, columns: tuple[str, ...], *, mask=None):
    """The rows of ``split``, checked to hold every ``[fairness] groups`` column; with
    ``mask`` (``data.pii``) a personal group's values are replaced by their keyed hashes,
    so no report or gate text names them."""
    rows = split_rows(splits.rows, split)
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise ConfigError(
            f"fairness.groups names {missing}, not columns of the table; columns are"
            f" {list(splits.columns or {})[:20]}"
        )
    if mask is not None:
        rows = rows.with_columns(
            pl.Series(c, [mask.hashed(v) for v in rows[c].to_list()], pl.String)
            for c in columns
            if c in mask.columns
        )
    return rows
