"""How many CPUs this process may use: a container's cpuset or ``taskset`` may allow
fewer than the machine has, and pools sized by the machine's count only make their
workers take turns on the allowed ones."""

from __future__ import annotations

import os

__all__ = ["usable_cpus"]


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1
