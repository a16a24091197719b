"""``mllife checkout``: a recorded model's artifact restored from DVC, by hash.

The DVC side (the tracked folder's listing, the cache, ``dvc fetch``) lives in
``mllife.storage.artifacts``; here the model side: which file a hash names, and the
check that the restored bytes are the ones the store recorded before they go in place.
"""

from __future__ import annotations

import hashlib

from mllife._errors import ArtifactError, VersioningError
from mllife.config.project import ProjectConfig
from mllife.models.registry import ModelRef
from mllife.storage.artifacts import (
    artifacts_dvc_file,
    dvc_cache_path,
    fetch_artifacts,
    tracked_manifest,
)
from mllife.storage.dvc import is_dvc_repo, pinned_version
from mllife.storage.files import sha256_of, write_atomically
from mllife.storage.store import Store

__all__ = ["checkout_model"]


def _cached(config: ProjectConfig, version, ref: ModelRef):
    md5 = tracked_manifest(config, version).get(ref.relative_path)
    return None if md5 is None else dvc_cache_path(config, md5)


def checkout_model(
    config: ProjectConfig, store: Store, model: str, *, remote: str | None = None
) -> ModelRef:
    """Restore a recorded model's artifact by hash (or unique prefix) from DVC."""
    if not is_dvc_repo(config.root):
        raise VersioningError(
            f"{config.root} is not a DVC repository: run `git init && dvc init` there first"
        )
    ref = ModelRef.from_row(store.resolve_model(model))
    path = ref.path(config.artifacts_dir)
    if path.is_file() and sha256_of(path) == ref.model_hash:
        return ref  # already in place and intact
    dvc_file = artifacts_dvc_file(config)
    if not dvc_file.is_file():
        raise ArtifactError(
            f"no {dvc_file.name}: artifacts were never tracked by DVC, so {ref.name}"
            f" {ref.model_hash[:12]} cannot be restored"
        )
    version = pinned_version(dvc_file)
    source = _cached(config, version, ref)
    if source is None or not source.is_file():
        fetch_artifacts(config, remote=remote)  # not in the local cache: from the remote
        source = _cached(config, version, ref)
    if source is None or not source.is_file():
        raise ArtifactError(
            f"{ref.name} {ref.model_hash[:12]} ({ref.relative_path}) is in neither the DVC"
            " cache nor the remote's copy of the tracked artifacts"
        )
    data = source.read_bytes()
    if hashlib.sha256(data).hexdigest() != ref.model_hash:
        raise ArtifactError(
            f"the DVC copy of {ref.relative_path} does not match the recorded hash"
            f" {ref.model_hash[:12]}; refusing to restore it"
        )
    write_atomically(path, data)
    return ref
