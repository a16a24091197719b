"""What each table column is worth and what it costs (ML Test Score, Data 2 and Data 3).

**Value**: scikit-learn's ``permutation_importance`` on the validation rows: how much
accuracy falls when one column's values are shuffled, repeated, with a 95% interval over
the repeats (Student's t). A column whose interval holds 0 in two runs in a row adds
nothing the model can show: it is flagged "not beneficial" (``not_beneficial``).

**Cost**: per column, the width it adds to the model's input (1 for a number, one per
category, the vocabulary of a text column) and the time its preprocessing takes per row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = [
    "ColumnValue",
    "column_value",
    "not_beneficial",
    "previous_column_values",
    "record_column_values",
    "validation_column_values",
]

#: fewer validation rows than this say nothing about a column's value
MIN_ROWS = 20


@dataclass(frozen=True)
class ColumnValue:
    column: str
    #: mean fall in validation accuracy when the column is shuffled, and its 95% interval
    importance: float
    low: float
    high: float
    #: input width the column adds, and its preprocessing time per row (microseconds)
    width: int
    micros_per_row: float

    @property
    def beneficial(self) -> bool:
        return self.low > 0


class _Predictor:
    """The mllife model as the estimator ``permutation_importance`` scores: rows come
    as an object array in ``columns`` order, go to the model as a typed frame."""

    def __init__(self, model, columns: list[str], schema: dict) -> None:
        self.model, self.columns, self.schema = model, columns, schema

    def fit(self, *_):  # sklearn checks the estimator has it; the model is trained already
        return self

    def predict(self, values) -> np.ndarray:
        frame = pl.DataFrame(
            {c: values[:, i].tolist() for i, c in enumerate(self.columns)}, schema=self.schema
        )
        proba = self.model.predict_proba(frame)
        return np.asarray(self.model.classes, dtype=object)[proba.argmax(axis=1)]


def _accuracy(estimator: _Predictor, values, y_true) -> float:
    return float(np.mean(estimator.predict(values) == y_true))


def _widths_and_times(preprocessor, frame: pl.DataFrame, columns: list[str]) -> dict:
    """Per column: (width, microseconds per row), from the preprocessor's own state and
    the best of three transforms of that column alone."""
    costs = {}
    for column in columns:
        alone, part = preprocessor.only([column]), frame.select(column)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            alone.transform(part)
            best = min(best, time.perf_counter() - started)
        costs[column] = (preprocessor.width(column), best / frame.height * 1e6)
    return costs


def column_value(
    model, rows: pl.DataFrame, y_true, *, repeats: int = 10, seed: int = 0
) -> list[ColumnValue]:
    """Each feature column's value and cost for a table ``model`` on ``rows`` (the
    validation rows' feature columns) with their true labels; most valuable first."""
    from sklearn.inspection import permutation_importance

    columns = list(rows.columns)
    y_true = np.asarray([str(y) for y in y_true], dtype=object)
    if rows.height < MIN_ROWS:
        raise ValueError(
            f"{rows.height} validation rows are too few to tell a column's value"
            f" (at least {MIN_ROWS}): add data or widen the validation split"
        )
    if len(y_true) != rows.height:
        raise ValueError(f"{rows.height} rows but {len(y_true)} labels")
    estimator = _Predictor(model, columns, dict(rows.schema))
    values = np.empty((rows.height, len(columns)), dtype=object)
    for i, column in enumerate(columns):
        values[:, i] = rows[column].to_list()
    found = permutation_importance(
        estimator, values, y_true, scoring=_accuracy, n_repeats=repeats, random_state=seed
    )
    from scipy import stats

    costs = _widths_and_times(model.preprocessor, rows, columns)
    half = stats.t.ppf(0.975, repeats - 1) / np.sqrt(repeats)
    result = [
        ColumnValue(
            column,
            float(found.importances_mean[i]),
            float(found.importances_mean[i] - half * found.importances_std[i]),
            float(found.importances_mean[i] + half * found.importances_std[i]),
            *costs[column],
        )
        for i, column in enumerate(columns)
    ]
    return sorted(result, key=lambda v: -v.importance)


def not_beneficial(current: list[ColumnValue], previous: dict[str, tuple[float, float]]):
    """Columns whose interval holds 0 now and held it in the previous run (``previous``:
    column -> (low, high) of that run)."""
    flagged = []
    for value in current:
        before = previous.get(value.column)
        if before is not None and value.low <= 0 <= value.high and before[0] <= 0 <= before[1]:
            flagged.append(value.column)
    return flagged


def validation_column_values(ref, splits, *, config, store) -> list[ColumnValue]:
    """:func:`column_value` of the recorded model ``ref`` on the validation split."""
    from mllife.models.registry import load_model
    from mllife.preprocess.inputs import split_rows

    model = load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    rows = split_rows(splits.rows, "validation")
    return column_value(model, rows.select(list(splits.columns)), rows["label"].to_list())


def record_column_values(store, *, run_id: str | None, model_hash: str, values) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(tzinfo=None)
    with store.writing() as conn:
        conn.execute("DELETE FROM column_values WHERE run_id IS NOT DISTINCT FROM ?", [run_id])
        for v in values:
            conn.execute(
                "INSERT INTO column_values VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, model_hash, v.column, v.importance, v.low, v.high, v.width,
                 v.micros_per_row, now],
            )  # fmt: skip


def previous_column_values(store, *, run_id: str | None) -> dict[str, tuple[float, float]]:
    """Each column's interval as the latest earlier run recorded it (empty: none)."""
    frame = store.query(
        "SELECT column_name, low, high FROM column_values WHERE run_id = ("
        " SELECT run_id FROM column_values WHERE run_id IS DISTINCT FROM ?"
        " ORDER BY created_at DESC LIMIT 1)",
        [run_id],
    )
    return {r["column_name"]: (r["low"], r["high"]) for r in frame.iter_rows(named=True)}
