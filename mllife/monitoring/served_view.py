"""Served traffic as it stands now: the store's ingested rows plus the server's segments
not yet ingested, as one set of views (``served_<table>``), and the segments alone
(``pending_<table>``).

Ingestion runs with the lifecycle's monitor job; a person reviewing served predictions
needs what was served a minute ago, and what another reviewer did a second ago. The
views ``served_<table>`` (predictions, feedback, ratings, reviews) read the store's table
and every complete segment whose name is not in the ingestion ledger (a segment ingested
but not yet deleted is read once, from the store). Read-only: nothing is ingested here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb

from mllife.config.project import ProjectConfig
from mllife.monitoring.log_format import PREDICTION_SCHEMA
from mllife.monitoring.traffic import SEGMENT_TABLES, segment_select, segments
from mllife.storage.store import Store

__all__ = ["VIEWS", "served_views"]

VIEWS = ("predictions", "feedback", "ratings", "reviews")
ATTEMPTS = 3


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _create_views(conn: duckdb.DuckDBPyConnection, config: ProjectConfig) -> None:
    folder = config.predictions_dir
    found = segments(folder) if folder.is_dir() else []
    ingested = {
        name
        for (name,) in conn.execute(
            "SELECT segment FROM ingested_segments WHERE segment IN (SELECT unnest(?))",
            [[path.name for _, path in found]],
        ).fetchall()
    }
    pending: dict[str, list] = {table: [] for table in VIEWS}
    for prefix, path in found:
        table = SEGMENT_TABLES[prefix]
        if table in pending and path.name not in ingested:
            pending[table].append(path)
    for table in VIEWS:
        columns = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ?"
                " AND column_name <> 'segment' ORDER BY column_index",
                [table],
            ).fetchall()
        ]
        parts = []
        for path in pending[table]:
            if table == "predictions":
                # the segment's own SELECT (unnamed expressions), named in schema order
                select = segment_select(conn, path, PREDICTION_SCHEMA)
                select = select.replace("?", _literal(str(path)), 1)
                parts.append(f"SELECT * FROM ({select}) AS s({', '.join(PREDICTION_SCHEMA)})")
            else:
                parts.append(
                    f"SELECT {', '.join(columns)} FROM read_parquet({_literal(str(path))})"
                )
        stored = f"SELECT {', '.join(columns)} FROM main.{table}"
        pending_parts = parts or [stored + " WHERE false"]
        for name, selects in (("served", [stored, *parts]), ("pending", pending_parts)):
            union = " UNION ALL BY NAME ".join(f"SELECT * FROM ({part})" for part in selects)
            conn.execute(f"CREATE OR REPLACE TEMP VIEW {name}_{table} AS {union}")


@contextlib.contextmanager
def served_views(config: ProjectConfig, store: Store) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection with the ``served_*`` views. A segment that ingestion
    deletes while they are made is not an error: they are made again (a few times)."""
    for attempt in range(ATTEMPTS):
        with store.reading() as conn:
            try:
                _create_views(conn, config)
                # a view reads its files lazily: touch each once, so a file deleted by
                # ingestion in between shows up here, where a retry can see the store
                for table in VIEWS:
                    conn.execute(f"SELECT count(*) FROM served_{table}").fetchall()
            except (duckdb.IOException, duckdb.InvalidInputException):
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            yield conn
            return
