"""Table rows that passed the contract, held by column: the serving fast path.

The row contract builds one of these while it checks a request (it has to look at every
value anyway), and the same object then feeds the model's preprocessor and the
prediction log. So a batch of rows is turned into arrays once, not three times, and the
log writer stores the features as typed Parquet columns instead of formatting JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from mllife._errors import DataError
from mllife.data.tables import POLARS_DTYPES

__all__ = ["ColumnBatch"]


@dataclass(frozen=True)
class ColumnBatch:
    """``n_rows`` checked rows: the non-null float columns ``number_names`` as one
    ``(n_rows, k)`` float64 matrix, every other column as a list of its values, and
    ``dtypes`` (contract dtype per column)."""

    n_rows: int
    number_names: tuple[str, ...]
    numbers: np.ndarray
    others: dict[str, list]
    dtypes: dict[str, str]

    def __post_init__(self) -> None:
        if self.numbers.shape != (self.n_rows, len(self.number_names)):
            raise ValueError(
                f"numbers has shape {self.numbers.shape}, expected"
                f" {(self.n_rows, len(self.number_names))}"
            )

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        # built on first use: the serving fast path never asks
        return {n: j for j, n in enumerate(self.number_names)}

    def __len__(self) -> int:
        return self.n_rows

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[dict[str, Any]],
        dtypes: dict[str, str],
        *,
        number_names: Sequence[str],
    ) -> ColumnBatch:
        """The general constructor, for rows already known to satisfy the contract;
        ``number_names`` are its non-null float columns (one layout per contract, so
        batches of one server always concatenate)."""
        numbers = tuple(number_names)
        matrix = np.array([[row[n] for n in numbers] for row in rows], dtype=np.float64)
        return cls(
            n_rows=len(rows),
            number_names=numbers,
            numbers=matrix.reshape(len(rows), len(numbers)),
            others={n: [row[n] for row in rows] for n in dtypes if n not in numbers},
            dtypes=dict(dtypes),
        )

    @classmethod
    def concat(cls, batches: Sequence[ColumnBatch]) -> ColumnBatch:
        first = batches[0]
        for batch in batches:
            if (batch.number_names, batch.others.keys()) != (
                first.number_names,
                first.others.keys(),
            ):
                raise ValueError(
                    f"batches of different layouts: {batch.number_names} + {list(batch.others)}"
                    f" and {first.number_names} + {list(first.others)}"
                )
        n_rows = sum(b.n_rows for b in batches)
        # column-major: polars takes each column as one contiguous block (a row-major
        # matrix costs it a strided gather per column, 3x the time for the log writer)
        numbers = np.empty((n_rows, len(first.number_names)), dtype=np.float64, order="F")
        np.concatenate([b.numbers for b in batches], axis=0, out=numbers)
        return cls(
            n_rows=n_rows,
            number_names=first.number_names,
            numbers=numbers,
            others={n: [v for b in batches for v in b.others[n]] for n in first.others},
            dtypes=first.dtypes,
        )

    def part(self, start: int, stop: int) -> ColumnBatch:
        """Rows ``start:stop`` (a micro-batch's share that belongs to one request)."""
        return ColumnBatch(
            n_rows=len(range(start, min(stop, self.n_rows))),
            number_names=self.number_names,
            numbers=self.numbers[start:stop],
            others={n: v[start:stop] for n, v in self.others.items()},
            dtypes=self.dtypes,
        )

    # -- reading -----------------------------------------------------------------------

    def numeric(self, names: Sequence[str]) -> np.ndarray:
        """Columns ``names`` as an ``(n_rows, len(names))`` float64 matrix; null is NaN."""
        if tuple(names) == self.number_names:
            return self.numbers
        out = np.empty((self.n_rows, len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            if name in self._index:
                out[:, j] = self.numbers[:, self._index[name]]
            elif name in self.others:
                try:
                    out[:, j] = [np.nan if v is None else float(v) for v in self.others[name]]
                except (TypeError, ValueError) as exc:
                    raise DataError(f"feature column {name!r} must hold numbers: {exc}") from None
            else:
                raise DataError(f"input rows lack feature column {name!r}")
        return out

    def values(self, name: str) -> list:
        if name in self.others:
            return self.others[name]
        if name in self._index:
            return self.numbers[:, self._index[name]].tolist()
        raise DataError(f"input rows lack feature column {name!r}")

    def to_frame(self) -> pl.DataFrame:
        numbers = pl.from_numpy(
            np.asfortranarray(self.numbers), schema=list(self.number_names), orient="row"
        )
        others = [
            pl.Series(name, values, dtype=POLARS_DTYPES[self.dtypes[name]], strict=True)
            for name, values in self.others.items()
        ]
        if not self.number_names:
            return pl.DataFrame(others, height=self.n_rows)
        return numbers.with_columns(others) if others else numbers

    def to_struct(self) -> pl.Series:
        """One struct per row, fields in sorted order: logged as is (typed, no text
        formatting on the server); ingestion turns it into canonical JSON."""
        frame = self.to_frame()
        return frame.select(pl.struct(sorted(frame.columns)).alias("features")).to_series()
