"""A known-problem pattern, checked and encoded, ready to register -- and the rule
that keeps pattern files inside their own folder."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mllife._errors import ProblemError

__all__ = ["Pattern", "inside"]


@dataclass(frozen=True)
class Pattern:
    """A checked pattern, encoded, ready to register."""

    problem: str
    payload: bytes
    suffix: str
    input_kind: str
    origin: str
    expected: str
    kind: str
    source: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()


def inside(folder: Path, name: str, declared_in: Path) -> Path:
    """``folder/name``, refused when it leaves ``folder`` (``..``, an absolute path, or a
    symlink pointing elsewhere): a problem file must not read arbitrary files."""
    base = Path(folder).resolve()
    target = (base / str(name)).resolve()
    if not target.is_relative_to(base):
        raise ProblemError(
            f"{declared_in}: pattern file {name!r} lies outside {base}; keep pattern files"
            " in the problem's own folder"
        )
    return target
