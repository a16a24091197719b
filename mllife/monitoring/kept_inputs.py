"""Served images kept for the review desk, within ``[review]``'s size and age limits.

The server hashes each uploaded image (SHA-256) for the prediction log. With
``[review] keep_inputs``, the bytes are also kept, named by that hash, under the
project's ``.mllife/served_inputs/<2 hex>/<hash>``: the same image served twice is kept
once, and a name is a hash, never a path a client chose. Writing happens on a thread of
its own, never on a request's path. An input over ``max_input_kb``, or one that would
take the folder past ``max_total_mb``, is not kept (counted: ``not_kept``); inputs older
than ``keep_days`` are deleted hourly by the server and at every ingestion.
"""

from __future__ import annotations

import hashlib
import re
import sys
import threading
import time
from collections import deque
from pathlib import Path

from mllife.storage.files import write_atomically

__all__ = ["InputKeeper", "kept_input", "prune_kept_inputs"]

_HASH = re.compile(r"\A[0-9a-f]{64}\Z")
PRUNE_EVERY_S = 3600.0
#: images waiting to be written, at most: a disk slower than the traffic costs kept
#: inputs (counted in ``not_kept``), never the server's memory
MAX_WAITING = 1000


def _path(folder: Path, digest: str) -> Path:
    if not _HASH.match(digest):
        raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
    return folder / digest[:2] / digest


def kept_input(folder: Path, digest: str) -> bytes | None:
    """The kept bytes of the input hashed ``digest``, or None when it was not kept (or
    expired). Bytes that no longer match their name are not returned."""
    path = _path(folder, digest)
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        return None
    return payload if hashlib.sha256(payload).hexdigest() == digest else None


def prune_kept_inputs(folder: Path, *, keep_days: float) -> tuple[int, int]:
    """Delete kept inputs older than ``keep_days``; (files deleted, bytes still kept)."""
    if not folder.is_dir():
        return 0, 0
    cutoff = time.time() - keep_days * 86400.0
    deleted = kept = 0
    for path in folder.glob("??/*"):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if stat.st_mtime < cutoff:
            path.unlink(missing_ok=True)
            deleted += 1
        else:
            kept += stat.st_size
    return deleted, kept


class InputKeeper:
    """Keeps served images on a background thread, within ``settings`` (``[review]``)."""

    def __init__(self, folder: Path, settings) -> None:
        self.folder = Path(folder)
        self.max_input = settings.max_input_kb * 1024
        self.max_total = int(settings.max_total_mb * 1024 * 1024)
        self.keep_days = settings.keep_days
        self.kept = 0  # inputs written by this server
        self.not_kept = 0  # over a limit
        self.bytes_kept = 0  # the folder's size, as last measured plus what was written
        self._queue: deque[tuple[str, bytes]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def keep(self, payloads: list[bytes], hashes: list[str]) -> None:
        """Queue a request's images (called on the request path: appends only)."""
        room = MAX_WAITING - len(self._queue)
        if room < len(payloads):
            self.not_kept += len(payloads) - max(room, 0)
        if room > 0:
            self._queue.extend(zip(hashes[:room], payloads[:room], strict=True))
            self._wake.set()

    def start(self) -> InputKeeper:
        _, self.bytes_kept = prune_kept_inputs(self.folder, keep_days=self.keep_days)
        self._thread = threading.Thread(target=self._run, name="input-keeper", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        pruned = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            self._drain()
            if time.monotonic() - pruned >= PRUNE_EVERY_S:
                _, self.bytes_kept = prune_kept_inputs(self.folder, keep_days=self.keep_days)
                pruned = time.monotonic()

    def _drain(self) -> None:
        while self._queue:
            digest, payload = self._queue.popleft()
            try:
                self._write(digest, payload)
            except OSError as exc:  # disk full, permissions: counted and shown on /health
                self.not_kept += 1
                error = f"{type(exc).__name__}: {exc}"
                if error != self.last_error:
                    print(f"mllife serve: cannot keep a served input: {error}", file=sys.stderr)
                self.last_error = error

    def _write(self, digest: str, payload: bytes) -> None:
        path = _path(self.folder, digest)
        if path.is_file():
            path.touch()  # served again: its age starts over
            return
        if len(payload) > self.max_input or self.bytes_kept + len(payload) > self.max_total:
            self.not_kept += 1
            return
        write_atomically(path, payload)
        self.bytes_kept += len(payload)
        self.kept += 1
        self.last_error = None

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self._drain()
