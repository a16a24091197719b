"""Fault injection for crash tests: ``MLLIFE_CRASH_AT=<point>`` kills the process there.

``<point>#<n>`` kills at the n-th time the point is reached (``store:before-commit#3``:
during the third store transaction). The reliability tests run promotions and whole
lifecycle runs in child processes, SIGKILL them at named points, then check that
nothing is lost or half-switched and that resuming completes the run. Unset, this is a
no-op.

``MLLIFE_FAIL_AT=<point>`` makes :func:`fail_point` raise instead: a step that fails
with an ordinary exception (a bug, a full disk), for tests of what the rest of the
run does then.

``MLLIFE_SLOW_AT=<point>:<seconds>`` makes :func:`slow_point` sleep there: a model
that takes too long, for tests of time limits and back-pressure.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["crash_point", "fail_point", "slow_point"]

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


class InjectedFailure(RuntimeError):
    """Raised at a fail point named by MLLIFE_FAIL_AT (tests only)."""


def fail_point(name: str) -> None:
    if os.environ.get("MLLIFE_FAIL_AT") == name:
        raise InjectedFailure(f"injected failure at {name} (MLLIFE_FAIL_AT)")


def slow_point(name: str) -> None:
    target = os.environ.get("MLLIFE_SLOW_AT")
    if not target:
        return
    point, _, seconds = target.rpartition(":")
    if point == name:
        import time

        time.sleep(float(seconds))
