"""Timing and peak-memory helpers shared by the benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """``fn()``'s result and the seconds it took (one run)."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def best_of(fn: Callable[[], object], *, repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by noise)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


EXACT_RSS_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def in_exact_rss_child(extra_args: list[str]) -> str:
    """Run this benchmark again, for memory only, with glibc's mmap threshold fixed.

    By default glibc raises the threshold after large frees and then serves big arrays
    from heap memory that stays resident, so RSS would hide later allocations. With a
    fixed threshold every large array is its own mapping, returned on free, and the
    high-water mark measures what a call really allocates (numpy and torch alike). The
    fixed threshold slows allocation, so timings are taken in the parent, not here.
    """
    done = subprocess.run(
        [sys.executable, *sys.orig_argv[1:], *extra_args],
        env={**os.environ, **EXACT_RSS_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def peak_extra_bytes(fn: Callable[[], object]) -> int:
    """Peak resident memory added while ``fn`` runs (Linux: resets VmHWM first).

    Counts every allocator (numpy, torch, ...), unlike tracemalloc. Meaningful in a
    process started by :func:`in_exact_rss_child`.
    """
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to now
    before = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - before) * 1024
