"""DVC: the data version of a folder, and serialized ``dvc`` commands.

The data version is DVC's own directory hash (``<md5>.dir``), computed with DVC's
library without touching the cache, so the store, Dagster and ``data.dvc`` name the same
thing. DVC allows one process per repository; our commands queue on a file lock first.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from mllife._errors import VersioningError
from mllife.storage.locks import file_lock

__all__ = [
    "DirectoryVersion",
    "data_version",
    "directory_version",
    "dvc_add",
    "is_dvc_repo",
    "pinned_version",
    "remote_args",
    "state_cache",
    "versioned_folder",
]

DVC_LOCK_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DirectoryVersion:
    md5: str  # DVC's directory hash, e.g. "7824...bee03.dir"
    nfiles: int
    size: int


def directory_version(path: Path, *, state_dir: Path | None = None) -> DirectoryVersion:
    """DVC's hash of a directory, exactly as ``dvc add`` would write it into a .dvc file.

    With ``state_dir``, DVC's own state database there remembers each file's md5 with
    its inode, size and mtime, so an unchanged file is not read again (a folder of
    100,000 unchanged files is versioned from its stats alone)."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_data.hashfile.state import State, StateNoop
    from dvc_objects.fs import MemoryFileSystem
    from dvc_objects.fs.local import LocalFileSystem

    path = Path(path).resolve()
    if not path.is_dir():
        raise VersioningError(f"cannot version {path}: it is not a directory")
    state = StateNoop() if state_dir is None else State(str(path), str(state_dir))
    try:
        staging = HashFileDB(MemoryFileSystem(global_store=False), "/staging", state=state)
        _, meta, obj = build(staging, str(path), LocalFileSystem(), "md5")
    finally:
        state.close()
    return DirectoryVersion(md5=obj.hash_info.value, nfiles=meta.nfiles, size=meta.size)


def data_version(data_path: Path, *, root: Path, state_dir: Path | None = None) -> DirectoryVersion:
    """The data version of a project's data: DVC's hash of the DVC-tracked folder.

    When ``data_path`` lies inside a folder pinned by a ``<folder>.dvc`` file (``data/``
    and ``data.dvc`` by default), the version is that folder's hash — the very value in
    the .dvc file. Otherwise it is the hash of ``data_path`` itself.
    """
    return directory_version(versioned_folder(data_path, root=root), state_dir=state_dir)


def versioned_folder(data_path: Path, *, root: Path) -> Path:
    """The folder whose DVC hash is the data version: the nearest one at or above
    ``data_path`` (inside ``root``) pinned by a ``<folder>.dvc`` file, else ``data_path``."""
    data_path, root = Path(data_path).resolve(), Path(root).resolve()
    for folder in (data_path, *data_path.parents):
        if folder == root or not folder.is_relative_to(root):
            break
        if (folder.parent / f"{folder.name}.dvc").is_file():
            return folder
    return data_path


def file_version(path: Path) -> str:
    """DVC's hash of a single file (its md5), the data version of a table."""
    import hashlib

    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pinned_version(dvc_file: Path) -> DirectoryVersion:
    """The version a ``.dvc`` file pins (its single output)."""
    try:
        spec = yaml.safe_load(Path(dvc_file).read_text())
        out = spec["outs"][0]
        return DirectoryVersion(md5=out["md5"], nfiles=int(out["nfiles"]), size=int(out["size"]))
    except FileNotFoundError:
        raise VersioningError(f"{dvc_file} does not exist") from None
    except (KeyError, IndexError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise VersioningError(f"{dvc_file} is not a DVC output file: {exc!r}") from exc


def is_dvc_repo(root: Path) -> bool:
    return (Path(root) / ".dvc").is_dir()


def _dvc(root: Path, *args: str, lock_dir: Path, timeout: float = DVC_LOCK_TIMEOUT_S) -> str:
    try:
        with file_lock(lock_dir / "dvc.lock", timeout=timeout, what="dvc " + " ".join(args)):
            done = subprocess.run(
                [sys.executable, "-m", "dvc", *args],
                cwd=root,
                capture_output=True,
                text=True,
                check=False,
            )
    except TimeoutError as exc:
        raise VersioningError(f"{exc}; wait for the other mllife/dvc command to end") from None
    if done.returncode != 0:
        raise VersioningError(
            f"`dvc {' '.join(args)}` failed in {root} (exit {done.returncode}):\n"
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout


def remote_args(remote: str | None) -> list[str]:
    """``-r REMOTE`` for a dvc command; none for "" or None (the default remote)."""
    return ["-r", remote] if remote else []


def dvc_add(root: Path, target: str, *, lock_dir: Path) -> DirectoryVersion:
    """``dvc add TARGET`` in ``root`` (caches the data, updates ``TARGET.dvc``)."""
    _dvc(root, "add", "--quiet", target, lock_dir=lock_dir)
    return pinned_version(Path(root) / f"{target}.dvc")


def state_cache(config) -> Path:
    """Where DVC's state database keeps file hashes by stat for this project."""
    return config.state_dir / "cache" / "dvc-state"
