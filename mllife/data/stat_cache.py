"""The data stage's stat cache: what was learned from an image file (its sha256, decoded
size and mode, or the error that stopped decoding) is kept beside the file's (inode,
size, mtime_ns); a file whose stat is unchanged is not read again. The same idea as
git's index and DVC's state database (which the data version itself uses, see
``mllife.storage.dvc``). A file rewritten in place within one mtime tick with the same
size is the known blind spot of every stat cache.

The cache is one Parquet file, written whole and atomically after a scan; a cache that
cannot be read (truncated, an older layout) is ignored with a warning, never trusted.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import polars as pl

from mllife._errors import DataError
from mllife.storage.files import write_atomically

__all__ = ["StatCache", "folder_fingerprint", "walk_files"]

_KEY = {"inode": pl.Int64, "stat_size": pl.Int64, "mtime_ns": pl.Int64, "max_pixels": pl.Int64}


def walk_files(folder: Path) -> list[tuple[tuple[str, ...], os.stat_result]]:
    """Every file under ``folder`` (hidden entries skipped) as (relative parts, stat),
    in path order, from one ``scandir`` per folder (no second stat per file).

    Symbolic links are never followed (a link can point anywhere, or at itself): any
    link under ``folder``, to a file or a folder, is a ``DataError`` naming them."""
    found: list[tuple[tuple[str, ...], os.stat_result]] = []
    links: list[str] = []

    def visit(path: str, parts: tuple[str, ...]) -> None:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_symlink():
                    links.append(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    visit(entry.path, (*parts, entry.name))
                elif entry.is_file(follow_symlinks=False):
                    found.append(((*parts, entry.name), entry.stat(follow_symlinks=False)))

    visit(str(folder), ())
    if links:
        links.sort()
        shown = ", ".join(links[:5]) + (f" and {len(links) - 5} more" if len(links) > 5 else "")
        raise DataError(
            f"{len(links)} symbolic link(s) in the data folder {folder}: {shown}. Links are"
            " not followed (they can point anywhere, outside the project or at themselves):"
            " replace each with a copy of the file it points to, or remove it"
        )
    found.sort(key=lambda item: item[0])
    return found


def folder_fingerprint(folder: Path, *salt: object) -> str:
    """A hash of every file's path, inode, size and mtime under ``folder`` (and ``salt``):
    equal fingerprints mean that no file was added, removed, renamed or rewritten."""
    import hashlib

    digest = hashlib.sha256(repr(salt).encode())
    for parts, stat in walk_files(folder):
        digest.update(
            f"{'/'.join(parts)}\0{stat.st_ino}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()


class StatCache:
    """Rows of a manifest keyed by relative path, valid while the file's stat matches."""

    def __init__(self, path: Path | None, schema: dict) -> None:
        self.path, self.schema = path, schema
        self._rows: dict[str, tuple] = {}
        if path is not None and path.is_file():
            try:
                frame = pl.read_parquet(path)
                if dict(frame.schema) != {**schema, **_KEY}:
                    raise ValueError(f"columns {list(frame.schema)}")
            except Exception as exc:  # an unreadable cache is rebuilt, never trusted
                print(f"mllife: ignoring the stat cache {path}: {exc}", file=sys.stderr)
            else:
                width = len(schema)
                for row in frame.iter_rows():
                    self._rows[row[0]] = row[:width], row[width:]
        self.reused = 0

    @staticmethod
    def key(stat: os.stat_result, max_pixels: int) -> tuple:
        return stat.st_ino, stat.st_size, stat.st_mtime_ns, max_pixels

    def get(self, path: str, key: tuple) -> tuple | None:
        hit = self._rows.get(path)
        if hit is not None and hit[1] == key:
            self.reused += 1
            return hit[0]
        return None

    def frame(self) -> pl.DataFrame:
        """The last scan's manifest, in its order (for a folder whose fingerprint is
        unchanged)."""
        rows = [row for row, _ in self._rows.values()]
        return pl.DataFrame(rows, schema=self.schema, orient="row")

    def save(self, rows: list[tuple], keys: list[tuple]) -> None:
        if self.path is None:
            return
        frame = pl.DataFrame(
            [(*row, *key) for row, key in zip(rows, keys, strict=True)],
            schema={**self.schema, **_KEY},
            orient="row",
        )
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        write_atomically(self.path, buffer.getvalue())
