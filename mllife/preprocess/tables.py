"""The preprocessing of table rows, learned on the train split and saved in the model.

Numbers: missing values imputed with the train median, then standardised. Categories
(and booleans): missing values become the most frequent train value, then one-hot
columns for the train categories (an unseen category is all zeros). Text: TF-IDF over
word and character n-grams of the normalised text (``mllife.preprocess.text``); a table
with text becomes a sparse :class:`TextFeatures`. The state is plain data (lists, dicts),
so torch artifacts keep loading with ``weights_only=True``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from mllife._errors import DataError
from mllife.config.project import ColumnConfig
from mllife.data.derived import DerivedFeatures
from mllife.data.text_normal import normalized_text
from mllife.preprocess.column_batch import ColumnBatch
from mllife.preprocess.text import TextFeatures, TextVectorizer

__all__ = ["TablePreprocessor"]

#: models saved before text columns had word and character n-grams (kind "tfidf")
MAX_TFIDF_FEATURES = 500


class TablePreprocessor:
    #: (a class default too: pickles saved before derived features lack the attribute)
    derived: DerivedFeatures | None = None

    def __init__(
        self, *, columns: dict[str, ColumnConfig], derived: DerivedFeatures | None = None
    ) -> None:
        self.columns = {k: v.dtype for k, v in columns.items()}
        #: ``[features] derive``: computed here for rows that arrive without its columns
        #: (served rows, known-problem patterns); its source is part of the state
        self.derived = derived
        self.state_: dict[str, dict[str, Any]] = {}
        self._plan: _RecordPlan | None = None
        self._vectorizers: dict[str, TextVectorizer] = {}

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.n_features,)

    @property
    def n_features(self) -> int:
        return sum(self.width(name) for name in self.state_)

    def width(self, name: str) -> int:
        """The model inputs column ``name`` becomes: 1 for a number, one per category,
        the vocabulary of a text column."""
        state = self.state_[name]
        return {
            "number": 1,
            "onehot": len(state.get("values", ())),
            "tfidf": len(state.get("vocabulary", ())),
            "text": len(state.get("word", ())) + len(state.get("char", ())),
        }[state["kind"]]

    @property
    def text_columns(self) -> list[str]:
        """The free-text columns (word and character n-grams), in column order."""
        return [n for n, s in self.state_.items() if s["kind"] == "text"]

    def only(self, names: list[str]) -> TablePreprocessor:
        """The fitted preprocessing of these columns alone (to time or inspect one)."""
        part = TablePreprocessor.__new__(TablePreprocessor)
        part.columns = {n: self.columns[n] for n in names}
        part.state_ = {n: self.state_[n] for n in names}
        part.derived = None  # given the columns themselves, derived ones included
        part._plan = None
        part._vectorizers = {}
        return part

    def _frame(self, rows: Any, *, complete: bool = True) -> pl.DataFrame:
        if isinstance(rows, ColumnBatch):
            frame = rows.to_frame()
        else:
            frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(list(rows))
        if not complete:
            return frame
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise DataError(f"input rows lack feature columns {missing}")
        return frame

    def fit_transform(self, rows: Any) -> torch.Tensor:
        frame = self._frame(rows)
        self.state_ = {}
        self._plan = None
        self._vectorizers = {}
        for name, dtype in self.columns.items():
            column = frame[name]
            if dtype in ("float", "int"):
                values = column.cast(pl.Float64)
                median = values.median()
                filled = values.fill_null(0.0 if median is None else median)
                mean, std = filled.mean() or 0.0, filled.std() or 0.0
                # A column constant up to rounding (std ~1e-16 of its mean) would blow any
                # served deviation up to a huge feature: scale it as a constant one.
                if not std > 1e-9 * abs(mean):
                    std = 1.0
                self.state_[name] = {
                    "kind": "number",
                    "median": float(median or 0.0),
                    "mean": float(mean),
                    "std": float(std),
                }
            elif dtype in ("category", "bool", "string"):
                text = column.cast(pl.String)
                counts = text.drop_nulls().value_counts(sort=True)
                values = sorted(text.drop_nulls().unique().to_list())
                mode = counts[name][0] if counts.height else ""
                self.state_[name] = {"kind": "onehot", "values": values, "mode": mode}
            else:
                vectorizer = TextVectorizer.fit(_texts(column))
                self.state_[name] = vectorizer.state
                self._vectorizers[name] = vectorizer
        return self.transform(frame)

    def fit(self, rows: Any) -> TablePreprocessor:
        self.fit_transform(rows)
        return self

    def transform(self, rows: Any) -> torch.Tensor:
        """A float32 tensor (N, n_features) for a polars frame, a list of row dicts, or a
        :class:`ColumnBatch` (serving: rows already checked and held by column)."""
        if not self.state_:
            raise DataError("the table preprocessor is not fitted")
        if self.derived is not None:  # the frame path, with the derived columns added
            rows = self.derived.completed(self._frame(rows, complete=False))
        elif not any(s["kind"] in ("tfidf", "text") for s in self.state_.values()):
            if isinstance(rows, ColumnBatch):
                return self._record_plan().transform_batch(rows)
            if isinstance(rows, list):
                return self._transform_records(rows)
        frame = self._frame(rows)
        scaled = self._scaled_numbers(frame)
        blocks: list = []
        texts: dict[str, list[str]] = {}
        for name, state in self.state_.items():
            column = frame[name]
            if state["kind"] == "number":
                blocks.append(scaled[name])
            elif state["kind"] == "onehot":
                text = column.cast(pl.String).fill_null(state["mode"]).to_numpy()
                blocks.append(
                    (text[:, None] == np.array(state["values"])[None, :]).astype(np.float64)
                )
            elif state["kind"] == "text":
                texts[name] = _texts(column)
                blocks.append(self._vectorizer(name).transform(texts[name]))
            else:  # "tfidf": a model saved before text columns had n-grams
                from sklearn.feature_extraction.text import TfidfVectorizer

                vectorizer = TfidfVectorizer(vocabulary=state["vocabulary"])
                vectorizer.idf_ = np.array(state["idf"])
                matrix = vectorizer.transform(column.cast(pl.String).fill_null("").to_list())
                blocks.append(matrix.toarray())
        if texts:  # tens of thousands of n-gram columns, nearly all zero: kept sparse
            import scipy.sparse as sp

            matrix = sp.hstack(
                [b if sp.issparse(b) else sp.csr_matrix(b.astype(np.float32)) for b in blocks],
                format="csr",
            )
            first = next(iter(texts))
            return TextFeatures(matrix, texts[first], first)
        stacked = np.hstack(blocks) if blocks else np.zeros((frame.height, 0))
        return torch.from_numpy(stacked.astype(np.float32))

    def _vectorizer(self, name: str) -> TextVectorizer:
        # built once per loaded model: rebuilding a 100,000-entry vocabulary per
        # request would cost more than the prediction
        if name not in self._vectorizers:
            self._vectorizers[name] = TextVectorizer(self.state_[name])
        return self._vectorizers[name]

    def _scaled_numbers(self, frame: pl.DataFrame) -> dict[str, np.ndarray]:
        """Each number column standardized, as an (N, 1) block. All at once, so a value
        out of reach is reported as the other paths report it (first by row, then by
        column)."""
        names = [n for n, s in self.state_.items() if s["kind"] == "number"]
        if not names:
            return {}
        columns = []
        for name in names:
            try:
                values = frame[name].cast(pl.Float64).fill_nan(None)
            except pl.exceptions.PolarsError as exc:
                raise DataError(f"column {name!r} must be numeric: {exc}") from exc
            columns.append(values.fill_null(self.state_[name]["median"]).to_numpy())
        states = [self.state_[n] for n in names]
        scaled = _standardized(
            np.column_stack(columns),
            np.array([s["mean"] for s in states]),
            np.array([s["std"] for s in states]),
            names,
        )
        return {name: scaled[:, [i]] for i, name in enumerate(names)}

    def _transform_records(self, records: list[dict[str, Any]]) -> torch.Tensor:
        """The same numbers as the polars path, for a few rows as dicts (serving).

        Building a polars frame costs more than the model for one row; this path skips
        it. ``tests/test_table_features.py`` checks the three paths agree.
        """
        missing = [c for c in self.columns if records and c not in records[0]]
        if missing:
            raise DataError(f"input rows lack feature columns {missing}")
        return self._record_plan().transform(records)

    def _record_plan(self) -> _RecordPlan:
        if self._plan is None:
            self._plan = _RecordPlan(self.state_)
        return self._plan

    def state(self) -> dict[str, Any]:
        derived = self.derived.state() if self.derived is not None else None
        return {"kind": "table", "columns": self.columns, "fitted": self.state_, "derived": derived}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TablePreprocessor:
        if state.get("kind") != "table":
            raise DataError(f"not a table preprocessor state: {state.get('kind')!r}")
        pre = cls(columns={})
        pre.columns = dict(state["columns"])
        pre.state_ = {k: dict(v) for k, v in state["fitted"].items()}
        derived = state.get("derived")  # absent in models saved before derived features
        pre.derived = DerivedFeatures.from_state(derived) if derived else None
        pre._plan = None
        pre._vectorizers = {}
        return pre


class _RecordPlan:
    """Where each column lands in the feature matrix, precomputed once per model."""

    def __init__(self, fitted: dict[str, dict[str, Any]]) -> None:
        self.numbers: list[str] = []
        number_slots, medians, means, stds = [], [], [], []
        self.onehots: list[tuple[str, dict[str, int], str]] = []
        offset = 0
        for name, state in fitted.items():
            if state["kind"] == "number":
                self.numbers.append(name)
                number_slots.append(offset)
                medians.append(state["median"])
                means.append(state["mean"])
                stds.append(state["std"])
                offset += 1
            else:
                slots = {value: offset + i for i, value in enumerate(state["values"])}
                self.onehots.append((name, slots, state["mode"]))
                offset += len(state["values"])
        self.width = offset
        self.number_names = tuple(self.numbers)  # a ColumnBatch's layout, to compare
        self.number_slots = np.array(number_slots, dtype=np.intp)
        self.medians = np.array(medians)
        self.means = np.array(means)
        self.stds = np.array(stds)

    def transform(self, records: list[dict[str, Any]]) -> torch.Tensor:
        n = len(records)
        out = np.zeros((n, self.width), dtype=np.float64)
        if self.numbers:
            names = self.numbers
            try:
                values = np.array(
                    [[_number(r[c]) for c in names] for r in records], dtype=np.float64
                ).reshape(n, len(names))
            except KeyError as exc:
                raise DataError(f"input rows lack feature column {exc.args[0]!r}") from None
            except (TypeError, ValueError) as exc:
                raise DataError(f"numeric feature columns must hold numbers: {exc}") from None
            values = np.where(np.isnan(values), self.medians, values)
            out[:, self.number_slots] = _standardized(values, self.means, self.stds, names)
        for name, slots, mode in self.onehots:
            for i, record in enumerate(records):
                value = record.get(name)
                value = mode if value is None else _text(value)
                slot = slots.get(value)
                if slot is not None:
                    out[i, slot] = 1.0
        return torch.from_numpy(out.astype(np.float32))

    def transform_batch(self, batch: ColumnBatch) -> torch.Tensor:
        """The same numbers for rows held by column: numbers in one vector step."""
        checked = self.number_names == batch.number_names  # non-null floats: no NaN
        if checked and not self.onehots:  # numbers only, in slot order: no scatter
            scaled = _standardized(batch.numbers, self.means, self.stds, self.numbers)
            return torch.from_numpy(scaled.astype(np.float32))
        out = np.zeros((batch.n_rows, self.width), dtype=np.float64)
        if self.numbers:
            values = batch.numeric(self.numbers)
            if not checked:
                values = np.where(np.isnan(values), self.medians, values)
            out[:, self.number_slots] = _standardized(values, self.means, self.stds, self.numbers)
        for name, slots, mode in self.onehots:
            for i, value in enumerate(batch.values(name)):
                slot = slots.get(mode if value is None else _text(value))
                if slot is not None:
                    out[i, slot] = 1.0
        return torch.from_numpy(out.astype(np.float32))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _standardized(
    values: np.ndarray, means: np.ndarray, stds: np.ndarray, names: list[str]
) -> np.ndarray:
    """``(values - mean) / std`` per column, refusing what a float32 feature cannot hold:
    it would become inf and the model would fail on it (a 500 in serving, a crash in
    training) instead of the caller hearing which value is wrong."""
    scaled = (values - means) / stds
    if np.abs(scaled).max(initial=0.0) <= _FLOAT32_MAX:  # False for inf and nan too
        return scaled
    row, col = (int(i) for i in np.argwhere(~(np.abs(scaled) <= _FLOAT32_MAX))[0])
    raise DataError(
        f"row {row}, column {names[col]!r} is {float(values[row, col])!r}, too far from the"
        f" training data (mean {means[col]:.6g}, std {stds[col]:.6g}) to be a feature:"
        " check its units, or declare min/max for the column in the data contract"
    )


def _texts(column: pl.Series) -> list[str]:
    return [normalized_text(v) for v in column.cast(pl.String).to_list()]


def _number(value: Any) -> float:
    if value is None:
        return np.nan
    if isinstance(value, str):
        raise TypeError(f"got text {value[:40]!r}")
    return float(value)


def _text(value: Any) -> str:
    # polars casts booleans to "true"/"false"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
