"""What the lifecycle asks of the store: the champion and the deployment history,
models, evaluations, datasets, trials, split assignments, test-set reads."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from mllife._errors import StoreError

__all__ = ["Deployment", "StoreQueries", "current_champion"]


@dataclass(frozen=True)
class Deployment:
    id: int
    action: str
    model_hash: str
    previous_hash: str | None
    name: str
    data_version: str
    reason: str
    decision: dict[str, Any]
    run_id: str | None
    created_at: datetime


_DEPLOYMENT_COLUMNS = (
    "id, action, model_hash, previous_hash, name, data_version, reason, decision, run_id,"
    " created_at"
)


class StoreQueries:
    """The domain reads of :class:`~mllife.storage.store.Store` (a mixin over its
    ``reading()`` connections and ``_frame``)."""

    def champion(self) -> Deployment | None:
        """The current champion: the newest deployment row, or None before the first."""
        with self.reading() as conn:
            return current_champion(conn)

    def deployments(self) -> pl.DataFrame:
        return self._frame("SELECT * FROM deployments ORDER BY id")

    def models(self) -> pl.DataFrame:
        return self._frame("SELECT * FROM models ORDER BY created_at")

    def resolve_model(self, prefix: str) -> dict[str, Any]:
        """The model whose hash starts with ``prefix`` (at least 6 hex digits)."""
        if len(prefix) < 6:
            raise StoreError(f"model hash prefix {prefix!r} is too short: give 6+ digits")
        frame = self._frame("SELECT * FROM models WHERE starts_with(model_hash, ?)", [prefix])
        if frame.height == 0:
            raise StoreError(f"no model in the store has a hash starting with {prefix!r}")
        if frame.height > 1:
            raise StoreError(f"hash prefix {prefix!r} is ambiguous: {frame.height} models")
        return frame.row(0, named=True)

    def deployment(self, deployment_id: int) -> Deployment | None:
        with self.reading() as conn:
            row = conn.execute(
                f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ?",
                [deployment_id],
            ).fetchone()
        return _deployment(row)

    def model_row(self, model_hash: str) -> dict[str, Any] | None:
        frame = self._frame("SELECT * FROM models WHERE model_hash = ?", [model_hash])
        return frame.row(0, named=True) if frame.height else None

    def evaluations(self, *, model_hash: str | None = None) -> pl.DataFrame:
        if model_hash is None:
            return self._frame("SELECT * FROM evaluations ORDER BY created_at")
        return self._frame(
            "SELECT * FROM evaluations WHERE model_hash = ? ORDER BY created_at", [model_hash]
        )

    def datasets(self) -> pl.DataFrame:
        return self._frame("SELECT * FROM datasets ORDER BY created_at")

    def test_read_count(self, *, split_version: str | None = None) -> int:
        sql = "SELECT count(*) FROM test_reads"
        params: list[Any] = []
        if split_version is not None:
            sql += " WHERE split_version = ?"
            params.append(split_version)
        with self.reading() as conn:
            return int(conn.execute(sql, params).fetchone()[0])

    def metric_history(
        self, *, split: str = "validation", metric: str = "accuracy"
    ) -> pl.DataFrame:
        """One row per model: its metric on ``split``, in order of creation."""
        return self._frame(
            "SELECT m.name, m.model_hash, m.created_at, e.value FROM models m"
            " JOIN evaluations e USING (model_hash)"
            " WHERE e.split = ? AND e.metric = ? ORDER BY m.created_at",
            [split, metric],
        )

    def trials(self, *, candidate: str | None = None) -> pl.DataFrame:
        if candidate is None:
            return self._frame("SELECT * FROM trials ORDER BY created_at, candidate, trial")
        return self._frame(
            "SELECT * FROM trials WHERE candidate = ? ORDER BY created_at, trial", [candidate]
        )

    def split_assignments(self, namespace: str) -> dict[str, str]:
        """Key -> split for every row ever assigned under ``namespace``."""
        frame = self._bulk_frame(
            "SELECT key, split FROM split_assignments WHERE namespace = ?", [namespace]
        )
        return dict(zip(frame["key"].to_list(), frame["split"].to_list(), strict=True))

    def _bulk_frame(self, sql: str, params: list[Any]) -> pl.DataFrame:
        """A large query result through a Parquet file (no row-by-row Python objects)."""
        with tempfile.TemporaryDirectory() as folder:
            staged = Path(folder) / "out.parquet"
            with self.reading() as conn:
                conn.execute(f"COPY ({sql}) TO '{staged}' (FORMAT parquet)", params)
            return pl.read_parquet(staged)


def current_champion(conn: duckdb.DuckDBPyConnection) -> Deployment | None:
    row = conn.execute(
        f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return _deployment(row)


def _deployment(row: tuple | None) -> Deployment | None:
    """A deployments row (the columns of ``_DEPLOYMENT_COLUMNS``, in order)."""
    if row is None:
        return None
    fields = list(row)
    fields[7] = json.loads(fields[7]) if fields[7] else {}
    return Deployment(*fields)
