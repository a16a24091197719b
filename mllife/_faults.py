"""Fault injection for crash tests: ``MLLIFE_CRASH_AT=<point>`` kills the process there.

The reliability tests run a promotion in a child process and SIGKILL it at each named
point, then check that the champion is intact or fully switched. Unset, this is a no-op.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crash_point"]


def crash_point(name: str) -> None:
    if os.environ.get("MLLIFE_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
