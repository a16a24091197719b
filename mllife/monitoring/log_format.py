"""The prediction log's format, shared by the server that writes it and the ingestion
that reads it: the Parquet segments' schemas, how prediction ids are formed (and derived
again in SQL), and the temp-file naming that lets a dead writer's half-written segment
be recognised and removed."""

from __future__ import annotations

import re

import polars as pl

# where dead writers' temp files are recognised; shared with the store's inbox
from mllife.storage.files import remove_orphaned_temp_files, temp_suffix

__all__ = [
    "FAILURE_SCHEMA",
    "FEEDBACK_SCHEMA",
    "PREDICTION_ID",
    "PREDICTION_ID_SQL",
    "PREDICTION_SCHEMA",
    "RATING_SCHEMA",
    "REVIEW_ACTIONS",
    "REVIEW_SCHEMA",
    "prediction_ids",
    "remove_orphaned_temp_files",
    "temp_suffix",
]

PREDICTION_SCHEMA = {
    "prediction_id": pl.String,
    "request_id": pl.String,
    "position": pl.Int32,
    "received_at": pl.Datetime("us"),
    "key_name": pl.String,
    "model_hash": pl.String,
    "model_name": pl.String,
    "role": pl.String,  # champion, canary or shadow
    "answered": pl.Boolean,  # returned to the caller (shadow rows are not)
    "input_hash": pl.String,
    "features": pl.String,  # JSON: the row, or the image's statistics
    "predicted": pl.String,
    "confidence": pl.Float64,
    "latency_ms": pl.Float64,
}

#: A prediction's id: its request's id (32 hex digits), "-", the input's position in the
#: request (under serving.max_batch's cap of 1,000,000); a shadow model's prediction adds
#: "-shadow". /predict returns ids (:func:`prediction_ids`), /feedback accepts only
#: PREDICTION_ID, and ingestion derives the same ids from a segment (PREDICTION_ID_SQL,
#: over the request row ``r`` and the input row ``i``). ``\Z``, not ``$``: ``$`` also
#: matches before a trailing newline.
#: canonical form only: 32 lowercase hex digits, a dash, the position without leading zeros
PREDICTION_ID = re.compile(r"\A[0-9a-f]{32}-(?:0|[1-9][0-9]{0,5})\Z")
PREDICTION_ID_SQL = (
    "r.request_id || '-' || i.position::VARCHAR"
    " || CASE WHEN r.role = 'shadow' THEN '-shadow' ELSE '' END"
)


def prediction_ids(request_id: str, count: int) -> list[str]:
    """The ids of a request's ``count`` answered predictions, in input order."""
    return [f"{request_id}-{position}" for position in range(count)]


#: a request the model failed to answer (the caller got a 5xx), or a shadow model's
#: failure (the caller got the champion's answer)
FAILURE_SCHEMA = {
    "request_id": pl.String,
    "received_at": pl.Datetime("us"),
    "key_name": pl.String,
    "model_hash": pl.String,
    "model_name": pl.String,
    "role": pl.String,
    "latency_ms": pl.Float64,
    "error": pl.String,
}

FEEDBACK_SCHEMA = {
    "prediction_id": pl.String,
    "label": pl.String,
    "key_name": pl.String,
    "received_at": pl.Datetime("us"),
}

#: a user's rating of one served prediction: 1 (bad) to 5 (good); thumbs down/up are 1/5
RATING_SCHEMA = {
    "prediction_id": pl.String,
    "rating": pl.Int8,
    "comment": pl.String,
    "key_name": pl.String,
    "received_at": pl.Datetime("us"),
}

#: what a reviewer did with a queue item: labelled it (the label is also feedback),
#: skipped it, or added its input to a known problem as a pattern
REVIEW_ACTIONS = ("label", "skip", "pattern")
REVIEW_SCHEMA = {
    "prediction_id": pl.String,
    "input_hash": pl.String,
    "action": pl.String,
    "label": pl.String,
    "problem": pl.String,
    "reviewer": pl.String,
    "received_at": pl.Datetime("us"),
}
