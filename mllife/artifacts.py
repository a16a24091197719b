"""Pipeline artifacts under DVC: track, push, pull, and restore any recorded model.

``artifacts/`` is content-addressed and append-only (``models/<sha256>.<ext>``),
so each ``dvc add`` of it (pinned in ``artifacts.dvc``) holds every model the
project ever recorded, and DVC's cache keeps each file by its md5. ``checkout`` brings a
model back from that cache (fetching from the DVC remote when the cache lacks it) and
verifies it against the sha256 the store recorded before putting it in place.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from mllife._errors import ArtifactError, VersioningError
from mllife._files import sha256_of, write_atomically
from mllife.config import ProjectConfig
from mllife.registry import ModelRef
from mllife.store import Store
from mllife.versioning import DirectoryVersion, _dvc, is_dvc_repo, pinned_version

__all__ = [
    "TrackResult",
    "checkout_model",
    "pull",
    "push",
    "save_split_manifest",
    "track_artifacts",
]


def _target(config: ProjectConfig) -> str:
    return str(config.artifacts_dir.relative_to(config.root))


def _dvc_file(config: ProjectConfig) -> Path:
    return config.artifacts_dir.parent / f"{config.artifacts_dir.name}.dvc"


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
    args = ["push", *(["-r", remote] if remote else []), *_targets(config)]  # "": default
    return _dvc(config.root, *args, lock_dir=config.state_dir)


def pull(config: ProjectConfig, *, remote: str | None = None) -> str:
    """``dvc pull``: the data and every tracked artifact from the remote."""
    _require_repo(config)
    args = ["pull", *(["-r", remote] if remote else []), *_targets(config)]
    return _dvc(config.root, *args, lock_dir=config.state_dir)


def _cache_path(config: ProjectConfig, md5: str) -> Path:
    """Where DVC's local cache keeps the object ``md5``, asked of DVC itself, so a
    configured ``cache.dir`` (a shared cache, another disk) is honoured."""
    from dvc.repo import Repo

    with Repo(str(config.root)) as repo:
        return Path(repo.cache.local.oid_to_path(md5))


def _manifest(config: ProjectConfig, version: DirectoryVersion) -> dict[str, str]:
    """relpath -> md5 of the files in a tracked directory version (DVC's .dir object)."""
    listing = _cache_path(config, version.md5)
    if not listing.is_file():
        return {}
    return {entry["relpath"]: entry["md5"] for entry in json.loads(listing.read_text())}


def checkout_model(
    config: ProjectConfig, store: Store, model: str, *, remote: str | None = None
) -> ModelRef:
    """Restore a recorded model's artifact by hash (or unique prefix) from DVC."""
    _require_repo(config)
    row = store.resolve_model(model)
    ref = ModelRef.from_row(row)
    path = ref.path(config.artifacts_dir)
    if path.is_file() and sha256_of(path) == ref.model_hash:
        return ref  # already in place and intact
    dvc_file = _dvc_file(config)
    if not dvc_file.is_file():
        raise ArtifactError(
            f"no {dvc_file.name}: artifacts were never tracked by DVC, so {ref.name}"
            f" {ref.model_hash[:12]} cannot be restored"
        )
    version = pinned_version(dvc_file)
    md5 = _manifest(config, version).get(ref.relative_path)
    source = None if md5 is None else _cache_path(config, md5)
    if source is None or not source.is_file():
        # not in the local cache: fetch the tracked artifacts from the remote
        args = [
            "fetch",
            *(["-r", remote] if remote else []),
            str(dvc_file.relative_to(config.root)),
        ]
        _dvc(config.root, *args, lock_dir=config.state_dir)
        md5 = _manifest(config, version).get(ref.relative_path)
        source = None if md5 is None else _cache_path(config, md5)
    if source is None or not source.is_file():
        raise ArtifactError(
            f"{ref.name} {ref.model_hash[:12]} ({ref.relative_path}) is in neither the DVC"
            " cache nor the remote's copy of the tracked artifacts"
        )
    data = source.read_bytes()
    import hashlib

    if hashlib.sha256(data).hexdigest() != ref.model_hash:
        raise ArtifactError(
            f"the DVC copy of {ref.relative_path} does not match the recorded hash"
            f" {ref.model_hash[:12]}; refusing to restore it"
        )
    write_atomically(path, data)
    return ref


def save_split_manifest(config: ProjectConfig, splits) -> Path:
    """``splits/<split_version>.parquet``: which row went to which split, kept with the
    models so a past model's exact training rows can be named after DVC restores them."""
    path = config.artifacts_dir / "splits" / f"{splits.split_version}.parquet"
    if not path.is_file():
        import io

        buffer = io.BytesIO()
        splits.rows.select(splits.key, "label", "split").write_parquet(buffer)
        write_atomically(path, buffer.getvalue())
    return path
