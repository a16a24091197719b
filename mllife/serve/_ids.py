"""Request ids: unguessable, and naming the key they were answered to and how many
predictions they hold, so /feedback can be checked without a lookup."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
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
        self._answered: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def add(self, request_id: str, model_name: str, count: int) -> None:
        with self._lock:
            self._answered[request_id] = (model_name, count)
            if len(self._answered) > self.limit:
                self._answered.popitem(last=False)

    def model_of(self, prediction_id: str, store: Store) -> str | None:
        """The model that answered ``prediction_id`` (canonical form): from the recent
        requests, else the store's ingested predictions; None: no such prediction."""
        request_id, position = prediction_id.rsplit("-", 1)
        with self._lock:
            recent = self._answered.get(request_id)
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
