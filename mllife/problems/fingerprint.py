"""One version string for everything the known problems are: the repository's problem
files (names and content) and the problems and patterns registered in the store (the
CLI's, and those synced from files earlier). Any addition, edit or removal changes it,
so the lifecycle knows the problem scores are stale and scores the problem for every
stored model version on the next run."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mllife.config.project import ProjectConfig
from mllife.storage.store import Store

__all__ = ["problems_version"]


def _files_digest(folder: Path, digest) -> None:
    if not folder.is_dir():
        digest.update(b"no problems folder\0")
        return
    for path in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        # a link is never followed here: its target text is what the folder holds
        content = str(path.readlink()).encode() if path.is_symlink() else path.read_bytes()
        digest.update(hashlib.sha256(content).digest())


def problems_version(config: ProjectConfig, store: Store | None = None) -> str:
    """The version of the project's known problems (files and registry), 16 hex digits."""
    digest = hashlib.sha256()
    _files_digest(config.problems_dir, digest)
    store = store or Store(config.store_path)
    if store.path.exists():
        for table, order in (("problems", "name"), ("patterns", "problem, pattern_hash")):
            frame = store.query(f"SELECT * EXCLUDE (created_at) FROM {table} ORDER BY {order}")
            digest.update(table.encode() + b"\0" + frame.write_csv().encode())
    return digest.hexdigest()[:16]
