"""API keys for the model server: created once, stored hashed, found by their hash.

A key is 32 random bytes (``mll_`` + URL-safe base64). Only its SHA-256 is stored: the
key has 256 bits of entropy, so a slow password hash would add nothing. Each key may
call a set of routes (``predict``, ``feedback``, ``model``) and a set of models (by
candidate name, or ``*`` for any). The ``review`` scope opens the review desk: it is
never given by default, since it shows every key's served inputs.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from mllife._errors import ServingError
from mllife.storage.store import Store

__all__ = [
    "ROUTES",
    "SCOPES",
    "ApiKey",
    "create_key",
    "find_key",
    "key_index",
    "list_keys",
    "revoke_key",
]

ROUTES = ("predict", "feedback", "model")
#: scopes a key may hold beyond the routes: ``feedback_any`` labels predictions answered
#: to *other* keys (a labelling team's key); without it a key labels only its own;
#: ``review``: the review desk (``/review``), which shows and labels any key's predictions
SCOPES = (*ROUTES, "feedback_any", "review")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_PREFIX = "mll_"


@dataclass(frozen=True)
class ApiKey:
    name: str
    key_hash: str
    routes: frozenset[str]
    models: frozenset[str]

    def may_call(self, route: str) -> bool:
        return route in self.routes or (route == "feedback" and "feedback_any" in self.routes)

    def may_review(self) -> bool:
        return "review" in self.routes

    def may_label_any(self) -> bool:
        return "feedback_any" in self.routes

    def may_use(self, model_name: str) -> bool:
        return "*" in self.models or model_name in self.models


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(
    store: Store,
    name: str,
    *,
    routes: tuple[str, ...] = ROUTES,
    models: tuple[str, ...] = ("*",),
) -> str:
    """Create a key and return it; it is shown this once and never stored in clear."""
    if not _NAME.match(name):
        raise ServingError(
            f"key name {name!r} is not valid: use 1-64 letters, digits, '_', '.', '@' or '-'"
        )
    unknown = sorted(set(routes) - set(SCOPES))
    if unknown or not routes:
        raise ServingError(f"routes must be among {list(SCOPES)}; got {list(routes)}")
    if not models or any(not m.strip() for m in models):
        raise ServingError(f"models must be candidate names or '*'; got {list(models)}")
    token = _PREFIX + secrets.token_urlsafe(32)
    with store.writing() as conn:
        existing = conn.execute("SELECT revoked_at FROM api_keys WHERE name = ?", [name]).fetchone()
        if existing is not None and existing[0] is None:
            raise ServingError(
                f"a key named {name!r} already exists; revoke it first"
                f" (`mllife keys revoke {name}`) or pick another name"
            )
        conn.execute("DELETE FROM api_keys WHERE name = ?", [name])
        conn.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
            [
                name,
                _hash(token),
                json.dumps(sorted(set(routes))),
                json.dumps(sorted(set(models))),
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )
    return token


def revoke_key(store: Store, name: str) -> None:
    with store.writing() as conn:
        row = conn.execute("SELECT revoked_at FROM api_keys WHERE name = ?", [name]).fetchone()
        if row is None or row[0] is not None:
            raise ServingError(f"no active key named {name!r} (see `mllife keys list`)")
        conn.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE name = ?",
            [datetime.now(UTC).replace(tzinfo=None), name],
        )


def list_keys(store: Store) -> list[ApiKey]:
    """The active keys (hashes only: the keys themselves are not recoverable)."""
    rows = store.query(
        "SELECT name, key_hash, routes, models FROM api_keys WHERE revoked_at IS NULL ORDER BY name"
    )
    return [
        ApiKey(
            r["name"],
            r["key_hash"],
            frozenset(json.loads(r["routes"])),
            frozenset(json.loads(r["models"])),
        )
        for r in rows.iter_rows(named=True)
    ]


def key_index(keys: list[ApiKey]) -> dict[str, ApiKey]:
    """The keys by their hash, for :func:`find_key`."""
    return {key.key_hash: key for key in keys}


def find_key(index: dict[str, ApiKey], token: str | None) -> ApiKey | None:
    """The key ``token`` belongs to, or None: one lookup of its SHA-256 (the request
    path's check). The lookup's time says nothing useful about the stored hashes:
    steering a token's SHA-256 towards one of them is a preimage search."""
    return index.get(_hash(token)) if token else None
