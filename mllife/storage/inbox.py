"""Store records from writers that must not open the store: Parquet segments in a shared
folder, ingested into the store exactly once.

DuckDB allows one writing process, and its file lock cannot be trusted across hosts (a
network file system's locks are not to be trusted with a database file). A writer on
another host (a worker of the team profile) therefore never opens the store: it posts
its records as one segment file -- written under a temp name, fsynced, renamed -- and
the process that owns the store ingests them. Each segment's rows and its ledger entry
(``ingested_segments``) commit in one transaction, and the file is deleted only after
the commit: a crash before the commit leaves the file for the next ingestion (nothing
lost); a crash after it leaves a file whose ledger entry exists, deleted without being
inserted again (nothing doubled). Rows of keyed tables (a model, an evaluation) that
the store already holds are kept, not doubled (``INSERT OR IGNORE``): a step retried on
another worker posts the same facts again. The server's prediction log is ingested the
same way (``mllife.monitoring.traffic``).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mllife._errors import DataError
from mllife.storage.files import atomic_target, temp_suffix
from mllife.storage.ledger import ingest_once
from mllife.storage.records import (
    MODEL_COLUMNS,
    TRIAL_COLUMNS,
    model_row,
    trial_rows,
)
from mllife.storage.store import Store

__all__ = ["POSTABLE_TABLES", "InboxResult", "PostingRecorder", "StoreInbox", "ingest_inbox"]

#: the tables of facts that steps append; never the champion's (deployments,
#: challengers, rollouts): a switch of the champion is a compare-and-swap on the store
POSTABLE_TABLES = frozenset(
    {
        "datasets",
        "splits",
        "models",
        "trials",
        "evaluations",
        "confusion",
        "test_reads",
        "pattern_results",
        "drift_results",
    }
)

_SEGMENT = re.compile(
    r"^(?P<table>[a-z_]+)~(?P<writer>[A-Za-z0-9_.-]{1,64})~[0-9a-f]{32}\.parquet$"
)
_WRITER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: a temp file this old belongs to a writer that died mid-write
STALE_TEMP_SECONDS = 3600.0


@dataclass(frozen=True)
class InboxResult:
    #: rows inserted, per table
    rows: dict[str, int]
    #: segments ingested by this call
    segments: int
    #: segments already in the ledger (a crash after the commit): deleted, not re-inserted
    already_ingested: int


class StoreInbox:
    """A folder (on storage every writer reaches) of segments waiting for the store."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    def post(self, table: str, rows: pl.DataFrame, *, writer: str) -> Path:
        """Post ``rows`` for ``table`` as one segment; visible to ingestion only once
        complete. ``writer`` (letters, digits, ``._-``) names the poster in the file name."""
        if table not in POSTABLE_TABLES:
            raise ValueError(f"{table!r} cannot be posted; one of {sorted(POSTABLE_TABLES)}")
        if not _WRITER.match(writer):
            raise ValueError(f"writer {writer!r}: use 1-64 letters, digits, '.', '_' or '-'")
        path = self.folder / f"{table}~{writer}~{uuid.uuid4().hex}.parquet"
        with atomic_target(path, suffix=temp_suffix(), crash_name="inbox:before-rename") as tmp:
            rows.write_parquet(tmp)
        return path

    def pending(self) -> list[Path]:
        """Complete segments not yet ingested, oldest name first (temp files excluded)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("*.parquet") if _SEGMENT.match(p.name))

    def remove_abandoned(self, *, older_than_seconds: float = STALE_TEMP_SECONDS) -> list[Path]:
        """Delete temp files of writers killed mid-write. Their pid cannot tell whether
        the writer lives (it may be on another host), so age decides: a segment takes
        milliseconds to write, and an hour also covers clock skew between hosts."""
        if not self.folder.is_dir():
            return []
        cutoff = time.time() - older_than_seconds
        removed = []
        for path in self.folder.glob(".*.tmp"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:  # its writer finished, or another ingester removed it
                continue
        return removed


_MODEL_TYPES = dict(zip(MODEL_COLUMNS, (pl.String,) * 7 + (pl.Int64, pl.Float64, pl.String,
                         pl.Datetime("us")), strict=True))  # fmt: skip
_TRIAL_TYPES = dict(zip(TRIAL_COLUMNS, (pl.String, pl.String, pl.Int64, pl.String, pl.String,
                         pl.Float64, pl.Float64, pl.String, pl.String, pl.Float64,
                         pl.Boolean, pl.String, pl.String, pl.String, pl.Datetime("us"),
                         pl.String),
                        strict=True))  # fmt: skip


class PostingRecorder:
    """How a training step records its model where it must not open the store (a worker
    of the team profile, on another host): ``record_model`` and ``record_trials`` post
    the very rows the store would write; the next step that opens the store ingests them
    (``assets.graph.resources``) before it reads."""

    def __init__(self, inbox: StoreInbox, *, writer: str) -> None:
        self.inbox, self.writer = inbox, writer

    def record_model(self, **fields) -> None:
        rows = pl.DataFrame([model_row(**fields)], schema=_MODEL_TYPES, orient="row")
        self.inbox.post("models", rows, writer=self.writer)

    def record_trials(self, **fields) -> None:
        rows = trial_rows(**fields)
        if rows:
            frame = pl.DataFrame(rows, schema=_TRIAL_TYPES, orient="row")
            self.inbox.post("trials", frame, writer=self.writer)


def _insert(conn, table: str, path: Path) -> int:
    if table not in POSTABLE_TABLES:
        raise DataError(f"segment {path} names table {table!r}, not postable")
    columns = list(pl.read_parquet_schema(path))
    known = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    }
    unknown = [c for c in columns if c not in known]
    if unknown or not columns:
        raise DataError(
            f"segment {path} has columns {unknown or columns} that table {table} does not;"
            f" its columns are {sorted(known)}"
        )
    names = ", ".join(f'"{c}"' for c in columns)
    if table == "trials" and "lineage" in columns:
        return _insert_trials(conn, names, path)
    (keyed,) = conn.execute(
        "SELECT count(*) FROM duckdb_constraints()"
        " WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [table],
    ).fetchone()
    verb = "INSERT OR IGNORE" if keyed else "INSERT"
    (inserted,) = conn.execute(
        f"{verb} INTO {table} ({names}) SELECT {names} FROM read_parquet(?)",
        [str(path)],
    ).fetchone()
    return int(inserted)


def _insert_trials(conn, names: str, path: Path) -> int:
    """A search's trials replace the older ones of its candidate and lineage (a step
    re-executed after it had posted them); segments are ingested in any order, so an
    older set arriving after a newer one is not inserted."""
    conn.execute(
        "DELETE FROM trials t USING read_parquet(?) s WHERE t.lineage = s.lineage"
        " AND t.candidate = s.candidate AND t.created_at <= s.created_at",
        [str(path)],
    )
    (inserted,) = conn.execute(
        f"INSERT INTO trials ({names}) SELECT {names} FROM read_parquet(?) s"
        " WHERE s.lineage IS NULL OR NOT EXISTS (SELECT 1 FROM trials t"
        " WHERE t.lineage = s.lineage AND t.candidate = s.candidate)",
        [str(path)],
    ).fetchone()
    return int(inserted)


def ingest_inbox(store: Store, inbox: StoreInbox) -> InboxResult:
    """Move every complete segment of ``inbox`` into ``store``, each exactly once.

    A segment that cannot be ingested (a column the table lacks, a damaged file) is a
    :class:`DataError` naming it; nothing of this call is committed, so nothing is lost."""
    inbox.remove_abandoned()
    segments = [(_SEGMENT.match(p.name)["table"], p) for p in inbox.pending()]
    rows, ingested, already = ingest_once(store, segments, _insert, crash_prefix="inbox")
    return InboxResult(rows, ingested, already)
