"""Served inputs checked against the training contract before any model sees them.

Table rows are checked by :class:`RowContract`, compiled from the same column contract
(``mllife.toml`` or the frozen ``mllife.schema.json``) that pandera enforces on training
data: same dtypes, ranges, categories and nullability, checked per row in plain Python
because a pandera validation costs milliseconds and a request has a budget of one.
``tests/reliability`` fuzzes both and checks they accept and reject the same rows.

Uploaded images are checked in ``_images``.
"""

from __future__ import annotations

import itertools
import math
import operator
from typing import Any

import numpy as np

from mllife._errors import DataError
from mllife.config.project import ColumnConfig
from mllife.data.text_normal import normalized_text
from mllife.preprocess.column_batch import ColumnBatch

__all__ = ["InputError", "RowContract", "feature_contract"]

MAX_REPORTED = 20
_NONE = type(None)
_FLOAT_TYPES = frozenset({float, int})
#: the JSON types each contract dtype accepts (bool is not a number here)
_TYPES = {
    "float": {float, int},
    "int": {int},
    "bool": {bool},
    "string": {str},
    "category": {str},
    "text": {str},
}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT64_MAX = float(np.finfo(np.float64).max)


class InputError(DataError):
    """A request's input breaks the contract; ``problems`` lists each offence."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


def feature_contract(config) -> dict[str, ColumnConfig]:
    """The columns clients send: the contract the champion was trained under (declared,
    else frozen), less the columns ``[features] derive`` makes from them."""
    from mllife.data.contract_file import load_contract

    columns = load_contract(None, config.data, config.schema_path).columns
    return {name: spec for name, spec in columns.items() if not spec.derived}


def _kind_error(spec: ColumnConfig, value: Any) -> str | None:
    """Why ``value`` is not of the column's dtype, or None if it is."""
    if value is None:
        return None if spec.nullable else "is missing (null) but the column is not nullable"
    dtype = spec.dtype
    if dtype == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {_show(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        if isinstance(value, int) and abs(value) > FLOAT64_MAX:
            return f"is {_show(value)}, too large for a 64-bit float"
    elif dtype == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {_show(value)}"
        if not INT64_MIN <= value <= INT64_MAX:
            return f"is {_show(value)}, outside the 64-bit integer range"
    elif dtype == "bool":
        if not isinstance(value, bool):
            return f"must be true or false, got {_show(value)}"
    elif not isinstance(value, str):
        return f"must be text, got {_show(value)}"
    elif dtype == "text" and not normalized_text(value):
        return "is empty (blank, or only markup): send the text to classify"
    if spec.min is not None and dtype in ("float", "int") and value < spec.min:
        return f"is {value!r}, below the contract's minimum {spec.min:g}"
    if spec.max is not None and dtype in ("float", "int") and value > spec.max:
        return f"is {value!r}, above the contract's maximum {spec.max:g}"
    if spec.categories is not None and value not in spec.categories:
        allowed = list(spec.categories[:10])
        more = "" if len(spec.categories) <= 10 else f" and {len(spec.categories) - 10} more"
        return f"is {_show(value)}, not one of the categories {allowed}{more}"
    return None


def _finite_sum(values: list) -> bool:
    try:
        return math.isfinite(sum(values))
    except OverflowError:  # integers beyond float64
        return False


def _bounds(spec: ColumnConfig) -> tuple[float | None, float | None]:
    """The contract's min and max; integers are also held to what int64 can store."""
    low, high = spec.min, spec.max
    if spec.dtype == "int":
        low = INT64_MIN if low is None else max(low, INT64_MIN)
        high = INT64_MAX if high is None else min(high, INT64_MAX)
    return low, high


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class RowContract:
    """Checks rows (dicts) against a column contract; raises :class:`InputError`."""

    def __init__(self, columns: dict[str, ColumnConfig]) -> None:
        self.columns = dict(columns)
        self._names = frozenset(columns)
        self._plan = [
            (
                name,
                frozenset(_TYPES[spec.dtype] | ({type(None)} if spec.nullable else set())),
                *_bounds(spec),
                None if spec.categories is None else frozenset(spec.categories),
                spec.dtype == "float",
            )
            for name, spec in self.columns.items()
        ]
        # non-nullable float columns are checked together, as one matrix
        floats = [
            (name, spec)
            for name, spec in self.columns.items()
            if spec.dtype == "float" and not spec.nullable
        ]
        self._floats = [name for name, _ in floats]
        # no bound is the largest finite float: one comparison refuses NaN and +-inf too
        largest = np.finfo(np.float64).max
        self._float_low = np.array([-largest if s.min is None else s.min for _, s in floats])
        self._float_high = np.array([largest if s.max is None else s.max for _, s in floats])
        self._float_getter = operator.itemgetter(*self._floats) if self._floats else None
        self._float_bounded = any(s.min is not None or s.max is not None for _, s in floats)
        together = set(self._floats)
        self._others = [step for step in self._plan if step[0] not in together]
        self._dtypes = {name: spec.dtype for name, spec in self.columns.items()}
        #: free-text columns: a blank text is refused, as cleaning drops it in training
        self.texts = [name for name, spec in self.columns.items() if spec.dtype == "text"]

    def check(self, rows: Any) -> ColumnBatch:
        """The rows as a :class:`ColumnBatch`, or :class:`InputError` naming each offence."""
        if not isinstance(rows, list) or not rows:
            raise InputError("'rows' must be a non-empty list of objects (column -> value)")
        batch = self._fast_batch(rows)
        if batch is not None:
            return batch
        problems: list[str] = []
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(f"row {index}: must be an object, got {type(row).__name__}")
            else:
                problems.extend(self._row_problems(index, row))
            if len(problems) >= MAX_REPORTED:
                break
        if problems:
            raise InputError(
                f"{len(problems)}{'+' if len(problems) >= MAX_REPORTED else ''} input"
                " problem(s): " + "; ".join(problems[:3]),
                problems[:MAX_REPORTED],
            )
        return ColumnBatch.from_rows(rows, self._dtypes, number_names=self._floats)

    def _fast_batch(self, rows: list) -> ColumnBatch | None:
        """Column at a time, no messages: the common case of a valid batch, fast.

        Anything doubtful returns None and the row-by-row check names the offence.
        """
        names = self._names
        for row in rows:
            if type(row) is not dict or row.keys() != names:
                return None
        n = len(rows)
        matrix = np.empty((n, 0))
        if self._floats:
            # every non-null float column of every row in one array: one type scan,
            # vector checks
            if len(self._floats) == 1:
                values = [(row[self._floats[0]],) for row in rows]
            else:
                values = list(map(self._float_getter, rows))
            if not _FLOAT_TYPES.issuperset(map(type, itertools.chain.from_iterable(values))):
                return None
            try:
                matrix = np.array(values, dtype=np.float64).reshape(n, len(self._floats))
            except OverflowError:  # an integer beyond float64
                return None
            if self._float_bounded:
                if not ((matrix >= self._float_low) & (matrix <= self._float_high)).all():
                    return None  # NaN, +-inf or out of bounds
            elif not np.isfinite(matrix).all():
                return None  # NaN or +-inf
        others = {}
        for name, allowed, low, high, categories, finite in self._others:
            values = [row[name] for row in rows]
            types = set(map(type, values))
            if not types <= allowed:
                return None
            present = values if _NONE not in types else [v for v in values if v is not None]
            if present:
                if finite and not _finite_sum(present):  # NaN, inf (or overflow)
                    return None
                if low is not None and min(present) < low:
                    return None
                if high is not None and max(present) > high:
                    return None
                if categories is not None and not categories.issuperset(present):
                    return None
            others[name] = values
        for name in self.texts:
            if not all(map(normalized_text, others[name])):
                return None  # a blank text (or a null): named by the row-by-row check
        return ColumnBatch(
            n_rows=n,
            number_names=tuple(self._floats),
            numbers=matrix,
            others=others,
            dtypes=self._dtypes,
        )

    def _row_problems(self, index: int, row: dict[str, Any]) -> list[str]:
        problems = []
        if row.keys() != self._names:
            missing = sorted(self._names - row.keys())
            extra = sorted(str(k) for k in row.keys() - self._names)
            if missing:
                problems.append(f"row {index}: missing column(s) {missing[:10]}")
            if extra:
                problems.append(f"row {index}: unknown column(s) {extra[:10]}")
        for name, spec in self.columns.items():
            if name in row:
                error = _kind_error(spec, row[name])
                if error is not None:
                    problems.append(f"row {index}, column {name!r} {error}")
        return problems
