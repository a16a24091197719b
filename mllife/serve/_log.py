"""Append-only Parquet segments for served predictions and feedback.

Requests only append a tuple to an in-memory buffer (under a lock held for a list
append). A background thread writes the buffer as one Parquet segment when it holds
``flush_rows`` rows or ``flush_seconds`` have passed, and on close. A segment is written
to a hidden temp file and renamed, so a reader never sees half a segment.

What a crash can lose: on SIGKILL or power loss, the rows still in the buffer (at most
``flush_rows`` rows or ``flush_seconds`` of traffic). A normal shutdown flushes them.
If segments cannot be written (disk full, permissions), rows stay buffered and are
retried; past ``max_buffered`` rows the server refuses predictions (503) rather than
answer without a record.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

__all__ = ["FEEDBACK_SCHEMA", "PREDICTION_SCHEMA", "SegmentLog"]

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

FEEDBACK_SCHEMA = {
    "prediction_id": pl.String,
    "label": pl.String,
    "key_name": pl.String,
    "received_at": pl.Datetime("us"),
}


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
        self.max_buffered = max_buffered or max(100 * flush_rows, 100_000)
        self._rows: list[tuple] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = 0
        self.segments_written = 0
        self.last_error: str | None = None

    # -- requests ----------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """False once the buffer is full because segments cannot be written."""
        return len(self._rows) < self.max_buffered

    def extend(self, rows: list[tuple]) -> None:
        with self._lock:
            self._rows.extend(rows)
            size = len(self._rows)
        if size >= self.flush_rows:
            self._wake.set()

    @property
    def buffered(self) -> int:
        return len(self._rows)

    # -- the writer thread -------------------------------------------------------------

    def start(self) -> SegmentLog:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"{self.prefix}-log", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._flush_reporting()

    def _flush_reporting(self) -> None:
        try:
            self.flush()
        except OSError as exc:
            # Rows stay buffered and are retried; /health shows the error meanwhile.
            self.last_error = f"{type(exc).__name__}: {exc}"
            print(f"mllife serve: cannot write {self.prefix} log: {exc}", file=sys.stderr)

    def flush(self) -> int:
        """Write buffered rows as one segment now; return how many were written."""
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            self._write(rows)
        except BaseException:
            with self._lock:
                self._rows[:0] = rows  # keep them, in order, for the next attempt
            raise
        self.rows_written += len(rows)
        self.segments_written += 1
        self.last_error = None
        return len(rows)

    def _write(self, rows: list[tuple]) -> Path:
        frame = pl.DataFrame(rows, schema=self.schema, orient="row")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        final = self.folder / f"{self.prefix}-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=self.folder)
        os.close(fd)
        try:
            frame.write_parquet(tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
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
