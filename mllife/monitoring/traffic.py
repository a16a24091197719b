"""Served traffic in the store: ingest the server's segments, then ask questions of it.

The server appends Parquet segments (it never writes the store: DuckDB allows one
writer). :func:`ingest_segments` moves them into the ``predictions`` and ``feedback``
tables, each segment exactly once: its rows and its ledger entry commit in one
transaction, and the file is deleted only after the commit. A crash in between leaves
a file whose ledger entry exists; the next ingestion deletes it without re-inserting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from mllife.config.project import ProjectConfig
from mllife.monitoring.kept_inputs import prune_kept_inputs
from mllife.monitoring.log_format import (
    FAILURE_SCHEMA,
    FEEDBACK_SCHEMA,
    PREDICTION_ID_SQL,
    PREDICTION_SCHEMA,
    RATING_SCHEMA,
    REVIEW_SCHEMA,
    remove_orphaned_temp_files,
)
from mllife.storage.ledger import ingest_once
from mllife.storage.schema import REVIEW_INPUTS_SELECT
from mllife.storage.store import Store

__all__ = [
    "IngestResult",
    "forget_older_than",
    "ingest_segments",
    "pending_segments",
    "refresh_review_inputs",
    "segment_select",
    "segments",
    "SEGMENT_TABLES",
    "served_features",
    "served_quality",
    "served_ratings",
    "shadow_comparison",
    "traffic_summary",
]

_TABLES = {
    "pred": ("predictions", PREDICTION_SCHEMA),
    "feedback": ("feedback", FEEDBACK_SCHEMA),
    "failed": ("served_failures", FAILURE_SCHEMA),
    "rating": ("ratings", RATING_SCHEMA),
    "review": ("reviews", REVIEW_SCHEMA),
}
_SCHEMAS = dict(_TABLES.values())
#: a segment's prefix -> its table in the store
SEGMENT_TABLES = {prefix: table for prefix, (table, _) in _TABLES.items()}


@dataclass(frozen=True)
class IngestResult:
    predictions: int
    feedback: int
    segments: int
    #: segments already in the ledger (a crash after commit); deleted, not re-inserted
    already_ingested: int
    #: half-written temp files of killed servers, removed (their rows were never logged)
    orphans_removed: int = 0
    #: requests a model failed to answer
    failures: int = 0
    #: users' ratings and reviewers' actions
    ratings: int = 0
    reviews: int = 0


def segments(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for prefix in _TABLES:
        found += [(prefix, p) for p in sorted(folder.glob(f"{prefix}-*.parquet"))]
    return found


def pending_segments(config: ProjectConfig) -> int:
    """Complete log segments waiting to be ingested (each is deleted once it is)."""
    folder = config.predictions_dir
    return len(segments(folder)) if folder.is_dir() else 0


def segment_select(conn, path: Path, schema: dict) -> str:
    """A SELECT (one ``?``: the segment's path) giving a segment's rows in the store
    table's column order. Table servers log features as a typed struct (fields sorted),
    made canonical JSON here; table rows are hashed from that JSON."""
    if "features" not in schema:
        return f"SELECT {', '.join(schema)} FROM read_parquet(?)"
    types = dict(
        conn.execute(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))",
            [str(path)],
        ).fetchall()
    )
    struct = types["features"].startswith("STRUCT")
    features = "to_json(features)::VARCHAR" if struct else "features"
    if "request_index" not in types:
        # a segment of a server from before the request-padded layout: a row per input
        expressions = {
            "features": features,
            "input_hash": f"coalesce(input_hash, sha256({features}))",
        }
        values = ", ".join(expressions.get(column, column) for column in schema)
        return f"SELECT {values} FROM read_parquet(?)"
    # request-padded layout (see PredictionLog): row i of the request columns is the
    # request that input rows with request_index = i belong to
    input_hash = "i.input_hash" if "input_hash" in types else "NULL::VARCHAR"
    per_input = {
        "prediction_id": PREDICTION_ID_SQL,
        "position": "i.position",
        "input_hash": f"coalesce({input_hash}, sha256(i.features))",
        "features": "i.features",
        "predicted": "i.predicted::VARCHAR",
        "confidence": "i.confidence",
    }
    values = ", ".join(per_input.get(column, f"r.{column}") for column in schema)
    return f"""
        WITH segment AS (SELECT * FROM read_parquet(?, file_row_number = true)),
        requests AS (
            SELECT * EXCLUDE (request_index), file_row_number AS request_index
            FROM segment WHERE request_id IS NOT NULL),
        inputs AS (SELECT * EXCLUDE (features), {features} AS features FROM segment)
        SELECT {values}
        FROM inputs i JOIN requests r ON r.request_index = i.request_index"""


def ingest_segments(config: ProjectConfig, store: Store) -> IngestResult:
    """Move every complete segment under ``.mllife/predictions/`` into the store."""
    folder = config.predictions_dir
    found = segments(folder) if folder.is_dir() else []
    orphans = remove_orphaned_temp_files(folder) if folder.is_dir() else []
    tables = [(_TABLES[prefix][0], path) for prefix, path in found]
    rows, ingested, already = ingest_once(
        store, tables, _insert, crash_prefix="ingest", then=refresh_review_inputs
    )
    if config.monitoring.keep_days is not None:
        forget_older_than(store, config.monitoring.keep_days)
    prune_kept_inputs(config.served_inputs_dir, keep_days=config.review.keep_days)
    return IngestResult(
        rows.get("predictions", 0), rows.get("feedback", 0), ingested, already, len(orphans),
        rows.get("served_failures", 0), rows.get("ratings", 0), rows.get("reviews", 0),
    )  # fmt: skip


def forget_older_than(store: Store, days: float) -> dict[str, int]:
    """Delete served predictions, feedback, failures, ratings and reviews received more
    than ``days`` ago
    (``[monitoring] keep_days``), in one transaction; the rows deleted per table."""
    from datetime import UTC, datetime, timedelta

    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)
    deleted = {}
    with store.writing() as conn:
        for table in ("predictions", "feedback", "served_failures", "ratings", "reviews"):
            (n,) = conn.execute(
                f"SELECT count(*) FROM {table} WHERE received_at < ?", [cutoff]
            ).fetchone()
            conn.execute(f"DELETE FROM {table} WHERE received_at < ?", [cutoff])
            deleted[table] = int(n)
        if any(deleted.values()):
            refresh_review_inputs(conn)
    return deleted


def refresh_review_inputs(conn) -> None:
    """Rebuild the review desk's per-input state from the rows now in the store (in the
    caller's transaction: it commits with the rows it is derived from)."""
    conn.execute("CREATE OR REPLACE TABLE review_inputs AS " + REVIEW_INPUTS_SELECT)


def _insert(conn, table: str, path: Path) -> int:
    schema = _SCHEMAS[table]
    select = segment_select(conn, path, schema)
    (n,) = conn.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()
    (inserted,) = conn.execute(
        f"INSERT INTO {table} ({', '.join(schema)}, segment) SELECT rows.*, ? FROM ({select}) rows",
        [path.name, str(path)],
    ).fetchone()
    if inserted != n:  # an input row whose request row is missing
        raise ValueError(f"{n} rows in the file but {inserted} readable")
    return n


def traffic_summary(store: Store) -> pl.DataFrame:
    """Per model and role: requests answered, latency percentiles, first and last seen."""
    return store.query(
        "SELECT model_name, left(model_hash, 12) AS model, role, count(*) AS predictions,"
        " quantile_cont(latency_ms, 0.5) AS p50_ms, quantile_cont(latency_ms, 0.99) AS p99_ms,"
        " min(received_at) AS first_seen, max(received_at) AS last_seen"
        " FROM predictions GROUP BY ALL ORDER BY last_seen DESC"
    )


# The newest label of each prediction that exists and was answered (the server already
# refused labels from keys the prediction was not answered to); a label for an id that
# matches no prediction is kept in the table (an audit trail) but counts nowhere.
_LATEST_FEEDBACK = (
    "SELECT f.prediction_id, f.label FROM feedback f"
    " SEMI JOIN predictions p ON p.prediction_id = f.prediction_id AND p.answered"
    " QUALIFY row_number() OVER (PARTITION BY f.prediction_id ORDER BY f.received_at DESC) = 1"
)


def served_quality(store: Store, *, every: str = "day") -> pl.DataFrame:
    """Accuracy on served predictions that received a feedback label, per period and
    model: the champion's quality on real traffic."""
    if every not in ("hour", "day", "week", "month"):
        raise ValueError(f"every must be hour, day, week or month, got {every!r}")
    return store.query(
        f"SELECT date_trunc('{every}', p.received_at) AS period, p.model_name,"
        " left(p.model_hash, 12) AS model, count(*) AS labelled,"
        " avg((p.predicted = f.label)::INTEGER) AS accuracy"
        f" FROM predictions p JOIN ({_LATEST_FEEDBACK}) f USING (prediction_id)"
        " WHERE p.answered GROUP BY ALL ORDER BY period, model_name"
    )


def served_ratings(store: Store, *, every: str | None = "day", views=None) -> pl.DataFrame:
    """Users' ratings (``POST /rating``) per period (``every``; None: all time) and
    model: how many, their mean (1-5), and the share rated 1 or 2. ``views``: a
    connection with ``served_view``'s views (the segments not yet ingested included)."""
    if every not in (None, "hour", "day", "week", "month"):
        raise ValueError(f"every must be None, hour, day, week or month, got {every!r}")
    period = "NULL::TIMESTAMP" if every is None else f"date_trunc('{every}', r.received_at)"
    prefix = "served_" if views is not None else ""
    sql = (
        f"SELECT {period} AS period, p.model_name, left(p.model_hash, 12) AS model,"
        " count(*) AS ratings, avg(r.rating) AS mean_rating,"
        " avg((r.rating <= 2)::INTEGER) AS low_share"
        f" FROM {prefix}ratings r JOIN {prefix}predictions p USING (prediction_id)"
        " WHERE p.answered GROUP BY ALL ORDER BY period, model_name"
    )
    if views is None:
        return store.query(sql)
    cursor = views.execute(sql)
    rows = cursor.fetchall()
    return pl.DataFrame(rows, schema=[d[0] for d in cursor.description], orient="row")


def shadow_comparison(store: Store) -> pl.DataFrame:
    """Shadow (and canary-free) pairs: the champion's answer and the challenger's on the
    same request rows: how often they agree, and each one's accuracy where labelled."""
    return store.query(
        "SELECT s.model_name AS shadow, left(s.model_hash, 12) AS shadow_model,"
        " c.model_name AS champion, count(*) AS rows,"
        " avg((s.predicted = c.predicted)::INTEGER) AS agreement,"
        " count(f.label) AS labelled,"
        " avg(CASE WHEN f.label IS NULL THEN NULL ELSE (c.predicted = f.label)::INTEGER END)"
        "   AS champion_accuracy,"
        " avg(CASE WHEN f.label IS NULL THEN NULL ELSE (s.predicted = f.label)::INTEGER END)"
        "   AS shadow_accuracy,"
        " quantile_cont(s.latency_ms, 0.5) AS shadow_p50_ms"
        " FROM predictions s JOIN predictions c"
        "   ON s.request_id = c.request_id AND s.position = c.position AND c.answered"
        f" LEFT JOIN ({_LATEST_FEEDBACK}) f ON f.prediction_id = c.prediction_id"
        " WHERE s.role = 'shadow' GROUP BY ALL ORDER BY rows DESC"
    )


def served_features(
    store: Store, *, since: datetime | None = None, model_hash: str | None = None
) -> pl.DataFrame:
    """The features (or image statistics) of answered predictions, one column each,
    plus the predicted class, for drift against the training data."""
    rows = store.query(
        "SELECT features, predicted FROM predictions WHERE answered"
        " AND (? IS NULL OR received_at >= ?) AND (? IS NULL OR model_hash = ?)"
        " ORDER BY received_at",
        [since, since, model_hash, model_hash],
    )
    if rows.height == 0:
        return pl.DataFrame()
    decoded = rows["features"].str.json_decode(infer_schema_length=None)
    return decoded.struct.unnest().with_columns(rows["predicted"].alias("prediction"))
