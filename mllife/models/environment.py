"""The library versions a model was trained with, recorded with it, and compared with
the environment that loads it: a pickled estimator or a network's numerics may change
with torch, torchvision, scikit-learn or numpy, so a model served or re-scored under
other versions is worth a warning (``mllife status``) and an alert."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version

__all__ = ["TRACKED_LIBRARIES", "describe_changes", "environment_changes", "library_versions"]

TRACKED_LIBRARIES = ("torch", "torchvision", "scikit-learn", "numpy")


def library_versions() -> dict[str, str]:
    """The installed versions of the tracked libraries (from their metadata: nothing is
    imported); a library that is not installed is left out."""
    found = {}
    for name in TRACKED_LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def environment_changes(
    spec_text: str | None, current: dict[str, str] | None = None
) -> dict[str, tuple[str, str | None]]:
    """{library: (trained with, installed now)} for each tracked library whose version
    differs; empty for a model recorded before versions were (nothing to compare)."""
    recorded = json.loads(spec_text or "{}").get("environment") or {}
    current = library_versions() if current is None else current
    return {
        name: (old, current.get(name))
        for name, old in sorted(recorded.items())
        if current.get(name) != old
    }


def describe_changes(changes: dict[str, tuple[str, str | None]]) -> str:
    return ", ".join(
        f"{name} {old} -> {new or 'not installed'}" for name, (old, new) in changes.items()
    )
