"""The DuckDB metrics store's engine: schema migrations, safe short writes, typed queries.

One file holds every data version, model, evaluation, test-set read and deployment.
DuckDB allows one writing process at a time, so writers open a short-lived connection,
retry with backoff while another process holds the lock, and never keep a connection
across slow work. Readers open ``read_only=True``. What is written and asked lives in
``records`` and ``queries``; both work through this engine's connections.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from mllife._errors import StoreError, StoreLockedError
from mllife._faults import crash_point
from mllife.storage.queries import Deployment, StoreQueries
from mllife.storage.records import StoreRecords
from mllife.storage.schema import MIGRATIONS

__all__ = ["Deployment", "Store"]

LOCK_TIMEOUT_S = 60.0


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("could not set" in text or "conflicting" in text)


class Store(StoreRecords, StoreQueries):
    """A handle on one store file; cheap to create, holds no connection between calls.

    Examples
    --------
    >>> store = Store(".mllife/store.duckdb")  # doctest: +SKIP
    >>> store.evaluations().head()  # doctest: +SKIP
    """

    def __init__(self, path: Path | str, *, lock_timeout: float = LOCK_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._migrated = False

    # -- connections -------------------------------------------------------------------

    def _connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as exc:
                if not _is_lock_error(exc):
                    raise StoreError(f"cannot open the store {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"the store {self.path} stayed locked by another process for"
                        f" {self.lock_timeout:g} s; wait for it to finish and retry"
                    ) from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)

    @contextlib.contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short write transaction: all of it is committed, or none of it."""
        self.migrate()
        conn = self._connect(read_only=False)
        try:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            crash_point("store:before-commit")
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.migrate()
        conn = self._connect(read_only=True)
        try:
            yield conn
        finally:
            conn.close()

    def migrate(self) -> int:
        """Apply pending migrations in place; return the schema version."""
        if self._migrated:
            return len(MIGRATIONS)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect(read_only=False)
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
            )
            (current,) = conn.execute(
                "SELECT coalesce(max(version), 0) FROM schema_migrations"
            ).fetchone()
            for version, sql in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                conn.execute("BEGIN TRANSACTION")
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, _now()])
                conn.execute("COMMIT")
        finally:
            conn.close()
        self._migrated = True
        return len(MIGRATIONS)

    # -- queries -----------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        """A read-only query as a polars frame (parameters bound, never formatted in)."""
        return self._frame(sql, params)

    def _frame(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        with self.reading() as conn:
            cursor = conn.execute(sql, params or [])
            rows = cursor.fetchall()
            columns = [d[0] for d in cursor.description]
            if not rows:
                # No rows to infer types from: take them from DuckDB's description, so
                # an empty result has the column types of a full one.
                return pl.DataFrame(
                    schema={
                        d[0]: _EMPTY_TYPES.get(str(d[1]), pl.String) for d in cursor.description
                    }
                )
        return pl.DataFrame(rows, schema=columns, orient="row")


_EMPTY_TYPES = {
    "BIGINT": pl.Int64,
    "INTEGER": pl.Int32,
    "HUGEINT": pl.Int128,
    "DOUBLE": pl.Float64,
    "FLOAT": pl.Float32,
    "BOOLEAN": pl.Boolean,
    "TIMESTAMP": pl.Datetime("us"),
    "DATE": pl.Date,
    "VARCHAR": pl.String,
}
