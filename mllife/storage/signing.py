"""Signed files: an HMAC-SHA256 over the bytes, keyed by a secret kept in the project's
local state (``.mllife/``, never in git), checked before the bytes are trusted.

Dagster step outputs are pickles, and unpickling runs code: a pickle swapped under
``.mllife/dagster/storage/`` would run at the next ``--resume``. Signing them means only
a process that can read the project's key can produce a value that loads.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from mllife._errors import ArtifactError
from mllife.storage.files import atomic_target

__all__ = ["project_key", "sign", "unsign"]

_MAGIC = b"MLLIFE-HMAC1\n"
_DIGEST = 32


def project_key(key_path: Path) -> bytes:
    """The 32-byte secret in ``key_path``, created (mode 0600) on first use."""
    return _key(key_path)


def _key(key_path: Path) -> bytes:
    try:
        key = key_path.read_bytes()
    except FileNotFoundError:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_target(key_path.with_suffix(".new")) as tmp:
            tmp.write_bytes(secrets.token_bytes(_DIGEST))
            tmp.chmod(0o600)
        try:
            # link, not rename: of two processes creating the key at once, one wins
            # and both then read the same key.
            os.link(key_path.with_suffix(".new"), key_path)
        except FileExistsError:
            pass
        finally:
            key_path.with_suffix(".new").unlink(missing_ok=True)
        key = key_path.read_bytes()
    if len(key) != _DIGEST:
        raise ArtifactError(
            f"the signing key {key_path} holds {len(key)} bytes, not {_DIGEST}: it was"
            " damaged. Delete it (a new one is made), then re-run from scratch: values"
            " signed with the old key will no longer load"
        )
    return key


def sign(payload: bytes, *, key_path: Path) -> bytes:
    digest = hmac.new(_key(key_path), payload, hashlib.sha256).digest()
    return _MAGIC + digest + payload


def unsign(data: bytes, *, key_path: Path, what: str) -> bytes:
    """The payload of ``data``, or ``ArtifactError`` if it is unsigned or was changed."""
    if not data.startswith(_MAGIC):
        raise ArtifactError(
            f"{what} is not signed with this project's key: it was not written by an"
            " mllife run of this project (or by one before signing existed), so it is not"
            " loaded. Start a new run instead of resuming this one"
        )
    digest = data[len(_MAGIC) : len(_MAGIC) + _DIGEST]
    payload = data[len(_MAGIC) + _DIGEST :]
    expected = hmac.new(_key(key_path), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(digest, expected):
        raise ArtifactError(
            f"{what} fails its integrity check (HMAC-SHA256 with the key in {key_path}):"
            " it was changed after the run wrote it, so it is not loaded. Start a new run"
            " instead of resuming this one"
        )
    return payload
