"""Writing files so that a reader never sees half of one: temp file, fsync, rename.

Every file the project writes goes through here, so each gets the same guarantees:
readers see the old file or the new one, never half of one, and the new file has the
permissions the umask gives (``mkstemp`` alone makes 0600 files, which a serving
account other than the trainer cannot read).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mllife._faults import crash_point

__all__ = [
    "DIR_MODE",
    "atomic_target",
    "remove_orphaned_temp_files",
    "sha256_of",
    "temp_suffix",
    "write_atomically",
]


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: read once at import: os.umask can only be read by setting it
_FILE_MODE = 0o666 & ~_current_umask()
#: for folders made with mkdtemp (0700) and then renamed into place
DIR_MODE = 0o777 & ~_current_umask()


@contextlib.contextmanager
def atomic_target(
    path: Path, *, suffix: str = "", fsync: bool = True, crash_name: str | None = None
) -> Iterator[Path]:
    """A temp path beside ``path`` to write to; renamed over ``path`` when the block
    ends cleanly, removed when it raises. ``suffix`` marks the temp name (its owner);
    ``crash_name`` is the fault-injection point just before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:  # from the file's creation on: an interrupt anywhere after it removes it
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        tmp = Path(name)
        os.close(fd)
        os.chmod(tmp, _FILE_MODE)
        yield tmp
        if fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        if crash_name:
            crash_point(crash_name)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes) -> None:
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def temp_suffix() -> str:
    """The temp-file suffix naming this process as the writer."""
    return f".{os.getpid()}.tmp"


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_orphaned_temp_files(folder: Path) -> list[Path]:
    """Delete half-written segment temp files whose writer process is gone.

    A temp file of a live writer (another server on the same folder) is left alone.
    """
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        pid = path.suffixes[-2].lstrip(".") if len(path.suffixes) >= 2 else ""
        if pid.isdigit() and not _writer_alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
