"""Request ids: unguessable, and naming the key they were answered to and how many
predictions they hold, so /feedback can be checked without a lookup."""

from __future__ import annotations

import hmac
import secrets
import threading
from pathlib import Path

from mllife.storage.signing import project_key
from mllife.storage.store import Store

__all__ = ["AnsweredRequests", "RequestIds"]

#: requests remembered by the server that answered them (the newest; older ones are
#: looked up in the store's ingested predictions)
REMEMBERED = 200_000


class AnsweredRequests:
    """Who answered each recent request: its model and how many predictions it held.
    Feedback from a key that may label any key's predictions is checked against this
    log (then the store's), never against the id's own, unauthenticated count."""

    def __init__(self, limit: int = REMEMBERED) -> None:
        # Two generations of half the limit each: when the newer fills up it becomes the
        # older and the oldest is dropped whole. One dict store per request, no lock (a
        # dict's get and set are atomic; only the event loop adds), and the newest
        # limit/2 to limit requests are always remembered.
        self._newer: dict[str, tuple[str, int]] = {}
        self._older: dict[str, tuple[str, int]] = {}
        self.limit = limit

    def add(self, request_id: str, model_name: str, count: int) -> None:
        newer = self._newer
        newer[request_id] = (model_name, count)
        if len(newer) >= self.limit // 2:
            self._older, self._newer = newer, {}

    def model_of(self, prediction_id: str, store: Store) -> str | None:
        """The model that answered ``prediction_id`` (canonical form): from the recent
        requests, else the store's ingested predictions; None: no such prediction."""
        request_id, position = prediction_id.rsplit("-", 1)
        recent = self._newer.get(request_id) or self._older.get(request_id)
        if recent is not None:
            model, count = recent
            return model if int(position) < count else None
        logged = store.query(
            "SELECT model_name FROM predictions WHERE request_id = ? AND position = ?"
            " AND answered LIMIT 1",
            [request_id, int(position)],
        )
        return logged["model_name"][0] if logged.height else None


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
        # HMAC-SHA256 keyed once; each tag copies the keyed state (the same digest as a
        # fresh hmac.new, at a third of its cost on the request path)
        self._mac = hmac.new(project_key(key_path), digestmod="sha256")
        self._lock = threading.Lock()
        self._prefix, self._next = secrets.token_hex(4)[:7], 0

    def _tag(self, nonce: str, count: str, key_name: str) -> str:
        mac = self._mac.copy()
        mac.update(f"{nonce}\0{count}\0{key_name}".encode())
        return mac.hexdigest()[:14]

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
