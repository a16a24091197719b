"""The DuckDB metrics store: schema migrations, safe short writes, typed queries.

One file holds every data version, model, evaluation, test-set read and deployment.
DuckDB allows one writing process at a time, so writers open a short-lived connection,
retry with backoff while another process holds the lock, and never keep a connection
across slow work. Readers open ``read_only=True``.
"""

from __future__ import annotations

import contextlib
import json
import random
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from mllife._errors import ChampionChangedError, StoreError, StoreLockedError
from mllife._faults import crash_point
from mllife._schema import MIGRATIONS

__all__ = ["Deployment", "Store"]

LOCK_TIMEOUT_S = 60.0


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("could not set" in text or "conflicting" in text)


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


class Store:
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

    # -- writes ------------------------------------------------------------------------

    def record_dataset(
        self,
        *,
        data_version: str,
        source: str,
        n_files: int,
        n_rows: int,
        n_dropped: int,
        n_classes: int,
    ) -> None:
        with self.writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?)",
                [data_version, source, n_files, n_rows, n_dropped, n_classes, _now()],
            )

    def record_split(
        self, *, split_version: str, data_version: str, seed: int, sizes: Mapping[str, int]
    ) -> None:
        with self.writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO splits VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    split_version,
                    data_version,
                    seed,
                    sizes.get("train", 0),
                    sizes.get("validation", 0),
                    sizes.get("test", 0),
                    _now(),
                ],
            )

    def record_model(
        self,
        *,
        model_hash: str,
        name: str,
        kind: str,
        spec: Mapping[str, Any],
        data_version: str,
        split_version: str,
        artifact_path: str,
        size_bytes: int,
        fit_seconds: float,
        run_id: str | None,
    ) -> None:
        with self.writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    model_hash,
                    name,
                    kind,
                    json.dumps(spec, sort_keys=True),
                    data_version,
                    split_version,
                    artifact_path,
                    size_bytes,
                    fit_seconds,
                    run_id,
                    _now(),
                ],
            )

    def record_trials(
        self,
        *,
        run_id: str | None,
        candidate: str,
        metric: str,
        trials: list[Mapping[str, Any]],
        chosen: int,
        model_hash: str,
        data_version: str,
        split_version: str,
    ) -> None:
        """Every trial of one search, in one transaction; ``chosen`` is the kept trial."""
        now = _now()
        with self.writing() as conn:
            conn.executemany(
                "INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [
                        run_id,
                        candidate,
                        t["index"],
                        json.dumps(t["params"], sort_keys=True),
                        metric,
                        t["score"],
                        t["validation_score"],
                        t["status"],
                        t["error"],
                        t["seconds"],
                        t["index"] == chosen,
                        model_hash if t["index"] == chosen else None,
                        data_version,
                        split_version,
                        now,
                    ]
                    for t in trials
                ],
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

    def record_split_assignments(self, namespace: str, rows: pl.DataFrame) -> int:
        """Remember ``rows`` (key, label, split); keys already known keep their split."""
        with tempfile.TemporaryDirectory() as folder:
            staged = Path(folder) / "rows.parquet"
            rows.select("key", "label", "split").write_parquet(staged)
            with self.writing() as conn:
                before = conn.execute("SELECT count(*) FROM split_assignments").fetchone()[0]
                conn.execute(
                    "INSERT INTO split_assignments"
                    " SELECT ?, r.key, r.label, r.split, ? FROM read_parquet(?) r"
                    " ANTI JOIN (SELECT key FROM split_assignments WHERE namespace = ?) k"
                    " ON r.key = k.key",
                    [namespace, _now(), str(staged), namespace],
                )
                after = conn.execute("SELECT count(*) FROM split_assignments").fetchone()[0]
        return int(after - before)

    def _bulk_frame(self, sql: str, params: list[Any]) -> pl.DataFrame:
        """A large query result through a Parquet file (no row-by-row Python objects)."""
        with tempfile.TemporaryDirectory() as folder:
            staged = Path(folder) / "out.parquet"
            with self.reading() as conn:
                conn.execute(f"COPY ({sql}) TO '{staged}' (FORMAT parquet)", params)
            return pl.read_parquet(staged)

    def record_evaluation(
        self,
        *,
        model_hash: str,
        split: str,
        split_version: str,
        metrics: Mapping[str, float],
        confusion: list[tuple[str, str, int]],
        run_id: str | None,
    ) -> None:
        """Metrics and confusion counts of one model on one split, in one transaction."""
        now = _now()
        with self.writing() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    [model_hash, split, split_version, k, float(v), run_id, now]
                    for k, v in metrics.items()
                ],
            )
            conn.execute(
                "DELETE FROM confusion WHERE model_hash = ? AND split = ? AND split_version = ?",
                [model_hash, split, split_version],
            )
            if confusion:
                conn.executemany(
                    "INSERT INTO confusion VALUES (?, ?, ?, ?, ?, ?)",
                    [[model_hash, split, split_version, t, p, int(c)] for t, p, c in confusion],
                )

    def record_test_read(
        self,
        *,
        split_version: str,
        model_hash: str,
        asset: str,
        run_id: str | None,
        n_rows: int,
    ) -> None:
        with self.writing() as conn:
            conn.execute(
                "INSERT INTO test_reads (split_version, model_hash, asset, run_id, n_rows,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [split_version, model_hash, asset, run_id, n_rows, _now()],
            )

    def record_deployment(
        self,
        *,
        action: str,
        model_hash: str,
        name: str,
        data_version: str,
        reason: str,
        decision: Mapping[str, Any],
        run_id: str | None,
        expected_previous: str | None,
    ) -> Deployment:
        """Make ``model_hash`` the champion, in one transaction.

        ``expected_previous`` is the champion the caller decided against; if another
        process changed the champion meanwhile, nothing is written (compare-and-swap).
        """
        with self.writing() as conn:
            current = _current_champion(conn)
            current_hash = current.model_hash if current else None
            if current_hash != expected_previous:
                raise ChampionChangedError(
                    f"the champion changed while deciding (expected {expected_previous},"
                    f" found {current_hash}); re-run the decision",
                    current_hash=current_hash,
                )
            crash_point("deployment:before-insert")
            conn.execute(
                "INSERT INTO deployments (action, model_hash, previous_hash, name, data_version,"
                " reason, decision, run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    action,
                    model_hash,
                    current_hash,
                    name,
                    data_version,
                    reason,
                    json.dumps(decision, sort_keys=True, default=str),
                    run_id,
                    _now(),
                ],
            )
            crash_point("deployment:before-commit")
            return _current_champion(conn)

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

    def champion(self) -> Deployment | None:
        """The current champion: the newest deployment row, or None before the first."""
        with self.reading() as conn:
            return _current_champion(conn)

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
                "SELECT id, action, model_hash, previous_hash, name, data_version, reason,"
                " decision, run_id, created_at FROM deployments WHERE id = ?",
                [deployment_id],
            ).fetchone()
        if row is None:
            return None
        fields = list(row)
        fields[7] = json.loads(fields[7]) if fields[7] else {}
        return Deployment(*fields)

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


def _current_champion(conn: duckdb.DuckDBPyConnection) -> Deployment | None:
    row = conn.execute(
        "SELECT id, action, model_hash, previous_hash, name, data_version, reason, decision,"
        " run_id, created_at FROM deployments ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    fields = list(row)
    fields[7] = json.loads(fields[7]) if fields[7] else {}
    return Deployment(*fields)
