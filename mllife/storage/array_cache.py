"""Cached arrays that prove their content: each entry is a ``.npy`` file behind a header
holding the BLAKE2b digest of its bytes. A cache entry edited, truncated or written by
another program no longer matches; reading it is then a miss, with a warning naming the
file (in the run's log), so it is rebuilt from the source instead of being trained or
evaluated on. The pixel and embedding caches are built on it."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np

from mllife.storage.files import atomic_target

__all__ = ["read_array", "write_array"]

_MAGIC = b"MLLIFE-NPY1\n"
_DIGEST = 32
#: Dagster keeps the "mllife" loggers' records in each run's log (dagster.yaml python_logs)
log = logging.getLogger("mllife.cache")


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_DIGEST).digest()


def write_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` whole (atomically), with the digest of its bytes."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    payload = buffer.getvalue()
    with atomic_target(path, suffix=".npy", fsync=False) as tmp:
        Path(tmp).write_bytes(_MAGIC + _digest(payload) + payload)


def read_array(path: Path) -> np.ndarray | None:
    """The array cached at ``path``; None when there is none, or when the entry does
    not match its digest (then it is removed, with a warning naming it)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    start = len(_MAGIC) + _DIGEST
    payload = data[start:]
    why = None
    if not data.startswith(_MAGIC):
        why = "has no content digest (damaged, or written by another program)"
    elif _digest(payload) != data[len(_MAGIC) : start]:
        why = "does not match its content digest (changed after it was written)"
    else:
        try:
            return np.load(io.BytesIO(payload), allow_pickle=False)
        except (ValueError, OSError) as exc:
            why = f"cannot be read ({exc})"
    log.warning(f"cache entry {path} {why}: removed and rebuilt from its source")
    Path(path).unlink(missing_ok=True)
    return None
