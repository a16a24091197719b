"""Segments into the store, each exactly once: the one ledger (``ingested_segments``)
behind the prediction log's ingestion and the store's inbox.

A segment's rows and its ledger entry commit in one transaction, and the file is deleted
only after the commit: a crash before it leaves the file for the next ingestion (nothing
lost); a crash after it leaves a file whose entry exists, deleted without being inserted
again (nothing doubled)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from mllife._errors import DataError
from mllife._faults import crash_point
from mllife.storage.store import Store

__all__ = ["ingest_once"]


def ingest_once(
    store: Store,
    segments: list[tuple[str, Path]],
    insert: Callable[[object, str, Path], int],
    *,
    crash_prefix: str,
    then: Callable[[object], None] | None = None,
) -> tuple[dict[str, int], int, int]:
    """Ingest ``(table, path)`` segments; ``insert(conn, table, path)`` adds one and
    returns its rows; ``then(conn)``, when given, runs after them in the same
    transaction (what is derived from the rows commits with them). Returns (rows per
    table, segments ingested, already in the ledger). A segment that fails is a
    :class:`DataError` naming it; nothing is committed."""
    rows: dict[str, int] = {}
    done: list[Path] = []
    already = 0
    if segments:
        with store.writing() as conn:
            for table, path in segments:
                seen = conn.execute(
                    "SELECT 1 FROM ingested_segments WHERE segment = ?", [path.name]
                ).fetchone()
                if seen is None:
                    try:
                        n = insert(conn, table, path)
                    except DataError:
                        raise
                    except Exception as exc:
                        raise DataError(
                            f"segment {path} cannot be ingested ({exc}); move it aside and"
                            " re-run: the other segments are left untouched"
                        ) from exc
                    conn.execute(
                        "INSERT INTO ingested_segments VALUES (?, ?, ?, ?)",
                        [path.name, table, n, datetime.now(UTC).replace(tzinfo=None)],
                    )
                    rows[table] = rows.get(table, 0) + n
                else:
                    already += 1
                done.append(path)
            if then is not None and len(done) > already:
                then(conn)
            crash_point(f"{crash_prefix}:before-commit")
    crash_point(f"{crash_prefix}:committed")
    for path in done:
        path.unlink(missing_ok=True)
    return rows, len(done) - already, already
