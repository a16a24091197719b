"""Signed files: an HMAC-SHA256 over the bytes, keyed by a secret kept in the project's
local state (``.mllife/``, never in git), checked before the bytes are trusted.

Dagster step outputs are pickles, and unpickling runs code: a pickle swapped under
``.mllife/dagster/storage/`` would run at the next ``--resume``. Signing them means only
a process that can read the project's key can produce a value that loads. A signature
also binds what the value is (``context``: for step outputs, the run and the asset), so a
genuine value moved to another asset's or run's place is refused, naming both.
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

_MAGIC = b"MLLIFE-HMAC2\n"  # HMAC1 (no context) is refused: it bound nothing
_OLD_MAGIC = b"MLLIFE-HMAC1\n"
_DIGEST = 32
_LENGTH = 4  # bytes of the context's length


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


def sign(payload: bytes, *, key_path: Path, context: str = "") -> bytes:
    """``payload`` signed together with ``context`` (what it is: checked on loading)."""
    bound = context.encode()
    header = len(bound).to_bytes(_LENGTH, "big") + bound
    digest = hmac.new(_key(key_path), header + payload, hashlib.sha256).digest()
    return _MAGIC + header + digest + payload


def unsign(data: bytes, *, key_path: Path, what: str, context: str = "") -> bytes:
    """The payload of ``data``, or ``ArtifactError`` if it is unsigned, was changed, or
    was signed as something else than ``context``."""
    if not data.startswith(_MAGIC):
        old = data.startswith(_OLD_MAGIC)
        raise ArtifactError(
            f"{what} is not signed with this project's key"
            + (" in the current format (it was written by an older mllife)" if old else "")
            + ": it was not written by an mllife run of this project, so it is not"
            " loaded. Start a new run instead of resuming this one"
        )
    start = len(_MAGIC)
    size = int.from_bytes(data[start : start + _LENGTH], "big")
    header = data[start : start + _LENGTH + size]
    digest = data[start + len(header) : start + len(header) + _DIGEST]
    payload = data[start + len(header) + _DIGEST :]
    expected = hmac.new(_key(key_path), header + payload, hashlib.sha256).digest()
    if len(header) != _LENGTH + size or not hmac.compare_digest(digest, expected):
        raise ArtifactError(
            f"{what} fails its integrity check (HMAC-SHA256 with the key in {key_path}):"
            " it was changed after the run wrote it, so it is not loaded. Start a new run"
            " instead of resuming this one"
        )
    signed_as = header[_LENGTH:].decode(errors="replace")
    if signed_as != context:
        raise ArtifactError(
            f"{what} is a genuine value of {signed_as or 'nothing named'}, put in the place"
            f" of {context or 'an unnamed value'}: it is not loaded. Start a new run"
            " instead of resuming this one"
        )
    return payload
