"""Pipeline artifacts under DVC: track, push, pull, and restore any recorded model.

``artifacts/`` is content-addressed and append-only (``models/<sha256>.<ext>``),
so each ``dvc add`` of it (pinned in ``artifacts.dvc``) holds every model the
project ever recorded, and DVC's cache keeps each file by its md5. A model is brought back
from that cache by ``mllife.models.checkout`` (which verifies it against the sha256 the
store recorded); this module knows DVC, not models.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mllife._errors import VersioningError
from mllife.config.project import ProjectConfig
from mllife.storage.dvc import DirectoryVersion, _dvc, is_dvc_repo, pinned_version, remote_args
from mllife.storage.files import write_atomically

__all__ = [
    "TrackResult",
    "dvc_cache_path",
    "pull",
    "artifacts_dvc_file",
    "fetch_artifacts",
    "push",
    "track_artifacts",
    "tracked_manifest",
]


def _target(config: ProjectConfig) -> str:
    return str(config.artifacts_dir.relative_to(config.root))


def _dvc_file(config: ProjectConfig) -> Path:
    if config.team_storage is not None:  # in the checkout: DVC reads .dvc files only there
        return config.root / f"{config.artifacts_dir.name}.dvc"
    return config.artifacts_dir.parent / f"{config.artifacts_dir.name}.dvc"


def _shared_dvc_file(config: ProjectConfig) -> Path:
    """On team storage, the newest ``artifacts.dvc``, published beside the artifacts for
    every member's checkout (each run's tracking step writes it in its own checkout)."""
    return config.team_storage / f"{config.artifacts_dir.name}.dvc"


def _require_repo(config: ProjectConfig) -> None:
    if not is_dvc_repo(config.root):
        raise VersioningError(
            f"{config.root} is not a DVC repository: run `git init && dvc init` there first"
        )


@dataclass(frozen=True)
class TrackResult:
    version: DirectoryVersion | None
    seconds: float
    pushed: bool
    warning: str | None


def track_artifacts(config: ProjectConfig, *, push_to: str | None = None) -> TrackResult:
    """``dvc add artifacts/`` (and ``dvc push`` when a remote is configured).

    A failed push is a warning, not a failure: the run's results are safe locally.
    """
    started = time.perf_counter()
    if config.team_storage is not None:
        return _track_to_remote(config, push_to, started)
    if not is_dvc_repo(config.root) or not config.artifacts_dir.is_dir():
        return TrackResult(None, 0.0, False, None)
    lock_dir = config.state_dir
    _dvc(config.root, "add", "--quiet", _target(config), lock_dir=lock_dir)
    version = pinned_version(_dvc_file(config))
    warning = None
    pushed = False
    if push_to is not None:
        try:
            push(config, remote=push_to)
            pushed = True
        except VersioningError as exc:
            warning = f"artifacts are tracked locally but the push to {push_to!r} failed: {exc}"
            print(f"mllife: warning: {warning}", file=sys.stderr)
    return TrackResult(version, time.perf_counter() - started, pushed, warning)


def _track_to_remote(config: ProjectConfig, remote: str | None, started: float) -> TrackResult:
    """Team storage: the shared artifacts folder, outside every checkout, goes straight to
    the DVC remote (``dvc add --to-remote``: no copy in a worker's cache), which every
    worker and member reaches; the ``.dvc`` file that pins it is published beside the
    artifacts. Without a remote the files stay content-addressed on the storage only."""
    if remote is None or not is_dvc_repo(config.root) or not config.artifacts_dir.is_dir():
        return TrackResult(None, 0.0, False, None)
    target = _dvc_file(config)
    args = ["add", "--quiet", str(config.artifacts_dir), "--out", target.stem, "--to-remote"]
    try:
        _dvc(config.root, *args, *remote_args(remote), lock_dir=config.state_dir)
    except VersioningError as exc:
        warning = f"artifacts stay on the team storage but the push to {remote!r} failed: {exc}"
        print(f"mllife: warning: {warning}", file=sys.stderr)
        return TrackResult(None, time.perf_counter() - started, False, warning)
    write_atomically(_shared_dvc_file(config), target.read_bytes())
    return TrackResult(pinned_version(target), time.perf_counter() - started, True, None)


def _targets(config: ProjectConfig) -> list[str]:
    targets = []
    for dvc_file in (config.root / "data.dvc", _dvc_file(config)):
        if dvc_file.is_file():
            targets.append(str(dvc_file.relative_to(config.root)))
    if not targets:
        raise VersioningError("nothing is tracked by DVC yet: run `mllife run` first")
    return targets


def push(config: ProjectConfig, *, remote: str | None = None) -> str:
    """``dvc push`` of the data and the artifacts to the (default or named) remote."""
    _require_repo(config)
    args = ["push", *remote_args(remote), *_targets(config)]  # "": default
    return _dvc(config.root, *args, lock_dir=config.state_dir)


def pull(config: ProjectConfig, *, remote: str | None = None) -> str:
    """``dvc pull``: the data and every tracked artifact from the remote."""
    _require_repo(config)
    args = ["pull", *remote_args(remote), *_targets(config)]
    return _dvc(config.root, *args, lock_dir=config.state_dir)


def dvc_cache_path(config: ProjectConfig, md5: str) -> Path:
    """Where DVC's local cache keeps the object ``md5``, asked of DVC itself, so a
    configured ``cache.dir`` (a shared cache, another disk) is honoured."""
    from dvc.repo import Repo

    with Repo(str(config.root)) as repo:
        return Path(repo.cache.local.oid_to_path(md5))


def tracked_manifest(config: ProjectConfig, version: DirectoryVersion) -> dict[str, str]:
    """relpath -> md5 of the files in a tracked directory version (DVC's .dir object)."""
    listing = dvc_cache_path(config, version.md5)
    if not listing.is_file():
        return {}
    return {entry["relpath"]: entry["md5"] for entry in json.loads(listing.read_text())}


def artifacts_dvc_file(config: ProjectConfig) -> Path:
    """The ``.dvc`` file pinning the artifacts folder. On team storage, the newest one
    (published beside the artifacts by the last run's tracking step) is copied into this
    checkout first: DVC fetches only through a .dvc file inside the repository."""
    local = _dvc_file(config)
    if config.team_storage is not None:
        shared = _shared_dvc_file(config)
        if shared.is_file() and (not local.is_file() or local.read_bytes() != shared.read_bytes()):
            write_atomically(local, shared.read_bytes())
    return local


def fetch_artifacts(config: ProjectConfig, *, remote: str | None = None) -> None:
    """``dvc fetch`` of the tracked artifacts into the local cache (from the remote)."""
    _require_repo(config)
    dvc_file = _dvc_file(config)
    args = ["fetch", *remote_args(remote), str(dvc_file.relative_to(config.root))]
    _dvc(config.root, *args, lock_dir=config.state_dir)
