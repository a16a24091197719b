"""Append-only Parquet segments for served predictions and feedback.

Requests only append a tuple to an in-memory buffer (under a lock held for a list
append). A background thread writes the buffer as one Parquet segment when it holds
``flush_rows`` rows or ``flush_seconds`` have passed, and on close. A segment is written
to a hidden temp file and renamed, so a reader never sees half a segment. The temp
file's name carries the writer's pid, so a temp file orphaned by a killed writer is
recognised and removed (by the next writer's start and by ingestion).

What a crash can lose: on SIGKILL or power loss, the rows not yet in a renamed segment:
the buffer plus a segment being written (``flush_seconds`` of traffic, at most
``flush_rows`` rows, up to twice that during a write). ``/health`` reports that count as
``buffered``. A normal shutdown flushes them.
If segments cannot be written (disk full, permissions), rows stay buffered and are
retried; past ``max_buffered`` rows the server refuses predictions (503) rather than
answer without a record.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from mllife.data.pii import PiiMask
from mllife.monitoring.log_format import (
    FAILURE_SCHEMA,
    FEEDBACK_SCHEMA,
    PREDICTION_ID,
    PREDICTION_SCHEMA,
    RATING_SCHEMA,
    REVIEW_SCHEMA,
    prediction_ids,
    remove_orphaned_temp_files,
    temp_suffix,
)
from mllife.preprocess.column_batch import ColumnBatch
from mllife.storage.files import atomic_target

__all__ = [
    "FAILURE_SCHEMA",
    "FEEDBACK_SCHEMA",
    "PREDICTION_ID",
    "FailureLog",
    "PredictionLog",
    "SegmentLog",
    "ServerLogs",
    "open_logs",
    "prediction_ids",
]


class SegmentLog:
    """A buffered writer of ``<prefix>-<time>-<id>.parquet`` files in ``folder``."""

    def __init__(
        self,
        folder: Path,
        *,
        prefix: str,
        schema: dict[str, pl.DataType],
        flush_rows: int,
        flush_seconds: float,
        max_buffered: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.prefix = prefix
        self.schema = schema
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_buffered = max_buffered or max(10 * flush_rows, 100_000)
        self._rows: list[tuple] = []
        self._pending = 0  # rows the buffered records stand for
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.segments_written = 0
        #: CPU time the writer thread spent on segments (what logging costs the server)
        self.cpu_seconds = 0.0
        self.last_error: str | None = None
        self.write_errors = 0

    # -- requests ----------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """False once the buffer is full because segments cannot be written."""
        return self._pending < self.max_buffered

    def append(self, row: tuple, *, size: int = 1) -> None:
        """Buffer one record standing for ``size`` rows."""
        with self._lock:
            self._rows.append(row)
            self._pending += size
            pending = self._pending
        if pending >= self.flush_rows:
            self._wake.set()

    def extend(self, rows: list[tuple]) -> None:
        with self._lock:
            self._rows.extend(rows)
            self._pending += len(rows)
            pending = self._pending
        if pending >= self.flush_rows:
            self._wake.set()

    @property
    def buffered(self) -> int:
        """Rows waiting to be written."""
        return self._pending

    # -- the writer thread -------------------------------------------------------------

    def start(self) -> SegmentLog:
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_orphaned_temp_files(self.folder)
        self._thread = threading.Thread(target=self._run, name=f"{self.prefix}-log", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._flush_reporting()

    def _flush_reporting(self) -> None:
        """Flush; on *any* write error keep the rows, report, and retry next tick.

        Not only OSError: polars reports a full disk as ``ComputeError`` ("No space
        left on device"), and a writer thread that died on it would leave the server
        answering 200s that are never logged. The rows are never dropped: they stay
        buffered (bounded by ``max_buffered``, past which /predict answers 503) and
        /health says ``degraded`` with this error until a write succeeds again.
        """
        started = time.thread_time()
        try:
            self.flush()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if error != self.last_error:
                print(f"mllife serve: cannot write {self.prefix} log: {error}", file=sys.stderr)
            self.last_error = error
            self.write_errors += 1
        finally:
            self.cpu_seconds += time.thread_time() - started

    def flush(self) -> int:
        """Write buffered rows as one segment now; return how many were written."""
        with self._lock:
            rows, self._rows = self._rows, []
            # rows stay counted as pending until their segment is renamed into place
            pending = sum(self._sizes(rows))
        if not rows:
            return 0
        try:
            self._write(rows)
        except BaseException:
            with self._lock:
                self._rows[:0] = rows  # keep them, in order, for the next attempt
            raise
        with self._lock:
            self._pending -= pending
        self.rows_written += pending
        self.segments_written += 1
        self.last_error = None
        return len(rows)

    def _sizes(self, rows: list[tuple]) -> list[int]:
        return [1] * len(rows)

    def _frame(self, rows: list[tuple]) -> pl.DataFrame:
        return pl.DataFrame(rows, schema=self.schema, orient="row")

    def _write(self, rows: list[tuple]) -> Path:
        frame = self._frame(rows)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        final = self.folder / f"{self.prefix}-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        with atomic_target(final, suffix=temp_suffix(), crash_name="log:before-rename") as tmp:
            # segments live only until ingestion: cheap to write beats small
            frame.write_parquet(tmp, compression="lz4", statistics=False)
        return final

    def close(self, *, timeout: float = 30.0) -> None:
        """Stop the thread and flush what is left (retrying briefly on write errors)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while self._rows:
            self._flush_reporting()
            if self._rows and time.monotonic() >= deadline:
                print(
                    f"mllife serve: {len(self._rows)} {self.prefix} rows could not be written"
                    f" before shutdown: {self.last_error}",
                    file=sys.stderr,
                )
                return
            if self._rows:
                time.sleep(0.5)


class PredictionLog(SegmentLog):
    """One buffered record per *request*; a segment holds one row per input.

    A request appends one tuple: ``(request_id, received_at, key_name, model_hash,
    model_name, role, answered, latency_ms, features, input_hashes, predicted,
    confidence, classes)`` where features to confidence are per input: ``predicted`` the
    class indices into ``classes`` and ``confidence`` their probabilities, as numpy
    arrays (no per-input Python objects are made for the log). ``features`` is, for
    tables, the :class:`ColumnBatch` the contract check built (the model read the same object),
    written as a typed struct column (fields sorted) and turned into canonical JSON by
    DuckDB at ingestion, so the server formats no numbers; for images, each input's
    statistics already encoded as JSON bytes. Table rows carry no input hash: ingestion
    computes it as the SHA-256 of that canonical JSON. Images are hashed on arrival
    (their bytes are not kept).

    A segment keeps what is per request once: row *i* of the request columns
    (``request_id`` to ``latency_ms``) is request *i*, null past the last request; the
    input columns (``request_index``, ``position``, ``predicted`` (categorical),
    ``confidence``, ``features``, and ``input_hash`` for images) have a row per input.
    Ingestion joins the two in DuckDB and derives the prediction ids. Repeating the
    request's strings on every input, as the store's table does, cost the writer
    (which shares the GIL with the request path) most of its time.
    """

    def __init__(self, folder: Path, *, mask: PiiMask | None = None, **kwargs) -> None:
        super().__init__(folder, prefix="pred", schema=PREDICTION_SCHEMA, **kwargs)
        #: ``[data] pii`` columns: hashed or left out before a segment is written
        self.mask = mask

    def _sizes(self, records: list[tuple]) -> list[int]:
        return [len(record[10]) for record in records]  # the predicted class indices

    def _frame(self, records: list[tuple]) -> pl.DataFrame:
        columns = list(zip(*records, strict=True))
        sizes = np.fromiter(map(len, columns[10]), dtype=np.int64, count=len(records))
        rows = int(sizes.sum())
        owner = np.repeat(np.arange(len(records), dtype=np.int32), sizes)
        starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
        requests = pl.DataFrame(
            dict(zip(_PER_REQUEST, columns, strict=False)), schema=_REQUEST_COLUMNS
        )
        inputs = {
            "request_index": owner,
            "position": pl.Series(np.arange(rows) - starts, dtype=pl.Int32),
            "predicted": _labels(columns[10], columns[12]),
            "confidence": pl.Series(np.concatenate(columns[11]), dtype=pl.Float64),
            "features": _encoded_features(columns[8], self.mask),
        }
        if any(h is not None for h in columns[9]):  # images: hashed on arrival
            hashes = (
                h if h is not None else itertools.repeat(None, n)
                for h, n in zip(columns[9], sizes, strict=True)
            )
            inputs["input_hash"] = pl.Series(
                list(itertools.chain.from_iterable(hashes)), dtype=pl.String
            )
        padded = requests.select(pl.all().extend_constant(None, rows - len(records)))
        return padded.with_columns(**inputs)


_PER_REQUEST = (
    "request_id",
    "received_at",
    "key_name",
    "model_hash",
    "model_name",
    "role",
    "answered",
    "latency_ms",
)
_REQUEST_COLUMNS = {k: PREDICTION_SCHEMA[k] for k in _PER_REQUEST}


def _labels(indices: tuple, classes: tuple) -> pl.Series:
    """Class names for per-request index arrays into per-request class lists (models in
    one log may differ), by one gather; categorical, so the names are written once."""
    if all(labels is classes[0] for labels in classes):  # one model answered them all
        return pl.Series(classes[0], dtype=pl.Categorical).gather(np.concatenate(indices))
    names: list[str] = []
    offsets: dict[int, int] = {}  # id of a class list -> where it starts in names
    shifted = []
    for best, labels in zip(indices, classes, strict=True):
        start = offsets.get(id(labels))
        if start is None:
            start = offsets[id(labels)] = len(names)
            names.extend(labels)
        shifted.append(best + start)
    return pl.Series(names, dtype=pl.Categorical).gather(np.concatenate(shifted))


def _encoded_features(features: tuple, mask: PiiMask | None = None) -> pl.Series:
    """The features column: table batches as one typed struct column (ingestion turns it
    into JSON, in DuckDB), pii columns masked; image statistics as the JSON sent."""
    if all(isinstance(f, ColumnBatch) for f in features):
        struct = ColumnBatch.concat(features).to_struct()
        return struct if mask is None else mask.struct(struct)
    return pl.Series(list(itertools.chain.from_iterable(features)), dtype=pl.Binary).cast(pl.String)


class FailureLog(SegmentLog):
    """``failed-*.parquet`` segments, one row per failed request (ingested into the
    store's ``served_failures``)."""

    def __init__(self, folder: Path, **kwargs) -> None:
        super().__init__(folder, prefix="failed", schema=FAILURE_SCHEMA, **kwargs)

    def record(self, request_id, received, key_name, served, role, started, exc) -> None:
        latency = (time.perf_counter() - started) * 1000.0
        self.append(
            (request_id, received, key_name, served.ref.model_hash, served.ref.name, role,
             latency, f"{type(exc).__name__}: {exc}"[:500])
        )  # fmt: skip


class ServerLogs(NamedTuple):
    predictions: PredictionLog | None
    feedback: SegmentLog
    failures: FailureLog | None
    ratings: SegmentLog
    reviews: SegmentLog


def open_logs(settings, folder: Path, *, mask: PiiMask | None = None) -> ServerLogs:
    """The server's logs under ``folder``, per ``[serving.log]``: with logging off only
    what people send is kept (feedback, ratings, reviews: it is what was asked for)."""
    sizes = {"flush_rows": settings.flush_rows, "flush_seconds": settings.flush_seconds}
    feedback = SegmentLog(folder, prefix="feedback", schema=FEEDBACK_SCHEMA, **sizes)
    ratings = SegmentLog(folder, prefix="rating", schema=RATING_SCHEMA, **sizes)
    reviews = SegmentLog(folder, prefix="review", schema=REVIEW_SCHEMA, **sizes)
    if not settings.enabled:
        return ServerLogs(None, feedback, None, ratings, reviews)
    predictions = PredictionLog(folder, mask=mask, **sizes)
    failures = FailureLog(folder, **sizes)
    return ServerLogs(predictions, feedback, failures, ratings, reviews)
