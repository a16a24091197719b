"""Fault injection for crash tests: ``MLLIFE_CRASH_AT=<point>`` kills the process there.

``<point>#<n>`` kills at the n-th time the point is reached (``store:before-commit#3``:
during the third store transaction). The reliability tests run promotions and whole
lifecycle runs in child processes, SIGKILL them at named points, then check that
nothing is lost or half-switched and that resuming completes the run. Unset, this is a
no-op.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["crash_point"]

_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    target = os.environ.get("MLLIFE_CRASH_AT")
    if not target:
        return
    point, _, nth = target.partition("#")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
