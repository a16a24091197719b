"""Report charts drawn once per input.

A chart is a function of its inputs (a frame of history, a confusion matrix, a title) and
of the code that draws it. Most runs redraw the same charts (a policy edit, a report
rewritten after a refusal), and drawing the first one costs ~0.5 s of matplotlib imports
alone. Inside ``charts_kept_in(folder)``, a chart drawn by a ``@memoized`` function is
kept there as a PNG named by the digest of its inputs, the drawing modules' source and
matplotlib's version; the same inputs later read it back.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from importlib.metadata import version
from pathlib import Path

from mllife.storage.files import write_atomically

__all__ = ["charts_kept_in", "memoized"]

_FOLDER: ContextVar[Path | None] = ContextVar("mllife_chart_folder", default=None)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: charts kept at most (the least recently used go first): a few reports' worth
KEEP = 400


@contextlib.contextmanager
def charts_kept_in(folder: Path) -> Iterator[None]:
    """Charts drawn inside the context are kept in (and read back from) ``folder``."""
    token = _FOLDER.set(Path(folder))
    try:
        yield
    finally:
        _FOLDER.reset(token)
    kept = sorted(Path(folder).glob("*.png"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in kept[KEEP:]:
        path.unlink(missing_ok=True)


@functools.cache
def _drawing_code() -> bytes:
    """What a kept chart depends on besides its inputs: the modules that draw."""
    from mllife.metrics import _plot, _report
    from mllife.reporting import plots

    digest = hashlib.blake2b(version("matplotlib").encode(), digest_size=16)
    for module in (_plot, _report, plots):
        digest.update(Path(module.__file__).read_bytes())
    return digest.digest()


def memoized(draw: Callable[..., bytes | None]) -> Callable[..., bytes | None]:
    """``draw``, its PNG kept per input while ``charts_kept_in`` is active."""

    @functools.wraps(draw)
    def kept(*args, **kwargs) -> bytes | None:
        folder = _FOLDER.get()
        if folder is None:
            return draw(*args, **kwargs)
        inputs = pickle.dumps((draw.__qualname__, args, sorted(kwargs.items())), protocol=5)
        key = hashlib.blake2b(_drawing_code() + inputs, digest_size=20).hexdigest()
        path = folder / f"{key}.png"
        if path.is_file():
            png = path.read_bytes()
            if png.startswith(_PNG_SIGNATURE):
                os.utime(path)  # recently used: kept longest
                return png
        png = draw(*args, **kwargs)
        if png is not None:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomically(path, png)
        return png

    return kept
