"""Asking a running Dagster UI (``mllife ui``, ``dagster dev``) through its GraphQL API,
as the UI's own pages do, until it answers."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any


def poll_graphql(port: int, query: str, answer: Callable[[dict], Any], *, deadline: float):
    """POST ``query`` to the UI on 127.0.0.1:``port`` once a second until ``answer`` of
    the response's ``data`` is not None (the server may still be starting); returns it."""
    body = json.dumps({"query": query}).encode()
    last = None
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql", data=body,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                payload = json.loads(response.read())
        except OSError as exc:  # not listening yet
            last = exc
            time.sleep(1)
            continue
        found = answer(payload.get("data") or {})
        if found is not None:
            return found
        last = payload
        time.sleep(1)
    raise AssertionError(f"the UI never answered {query!r}: {last}")
