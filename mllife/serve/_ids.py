"""Request ids: unguessable, and naming the key they were answered to and how many
predictions they hold, so /feedback can be checked without a lookup."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from pathlib import Path

from mllife.storage.signing import project_key

__all__ = ["RequestIds"]


class RequestIds:
    """Request ids that name the key they were answered to and how many predictions
    they hold, unguessably.

    32 hex digits: a 13-digit nonce (7 random digits drawn at start, then a 6-digit
    counter: no system call per request), the request's number of predictions (5 digits),
    and a 14-digit tag, HMAC-SHA256(secret, nonce, count, key name). The secret lives in
    the project's local state (``.mllife/serving.key``), so every server of the project,
    restarted or not, can tell without a lookup whether a prediction id was answered to
    a given key and exists (its position is below the count) -- and no client can make
    one for another key.
    """

    def __init__(self, key_path: Path) -> None:
        self._secret = project_key(key_path)
        self._lock = threading.Lock()
        self._prefix, self._next = secrets.token_hex(4)[:7], 0

    def _tag(self, nonce: str, count: str, key_name: str) -> str:
        message = f"{nonce}\0{count}\0{key_name}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:14]

    def new(self, key_name: str, count: int) -> str:
        with self._lock:
            if self._next > 0xFFFFFF:  # the counter wrapped: a fresh random half
                self._prefix, self._next = secrets.token_hex(4)[:7], 0
            nonce = f"{self._prefix}{self._next:06x}"
            self._next += 1
        counted = f"{count:05x}"
        return nonce + counted + self._tag(nonce, counted, key_name)

    def issued_to(self, prediction_id: str, key_name: str) -> bool:
        """Whether ``prediction_id`` (already matching PREDICTION_ID) is a prediction of
        a request answered to ``key_name``."""
        nonce, counted, tag = prediction_id[:13], prediction_id[13:18], prediction_id[18:32]
        if not hmac.compare_digest(tag, self._tag(nonce, counted, key_name)):
            return False
        return int(prediction_id[33:]) < int(counted, 16)

    def exists(self, prediction_id: str) -> bool:
        """Whether the position is below the request's count (for keys that may label any
        key's predictions: the count itself is then not authenticated, and labels of
        predictions that do not exist count nowhere)."""
        return int(prediction_id[33:]) < int(prediction_id[13:18], 16)
