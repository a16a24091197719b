"""The team profile's data through a DVC remote.

Each worker runs from its own checkout, so "the data" could differ between them. A run
carries the version its submitter pinned (the text of the data's ``.dvc`` file, which
``mllife run`` first pushes to the DVC remote); before a step on a worker reads a file,
:func:`align_data` makes that checkout's data the pinned version, pulling it from the
remote when it differs (``git pull && dvc pull``, done for the worker). The manifest's
sha256 is still checked as every file is read.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from mllife._errors import VersioningError
from mllife.storage.dvc import (
    _dvc,
    directory_version,
    is_dvc_repo,
    pinned_version,
    remote_args,
    state_cache,
    versioned_folder,
)
from mllife.storage.files import write_atomically
from mllife.storage.locks import file_lock

__all__ = ["align_data", "data_dvc_file", "publish_data"]


def data_dvc_file(config) -> Path | None:
    """The ``.dvc`` file that pins the project's data folder, if there is one."""
    folder = versioned_folder(config.data_path, root=config.root)
    dvc_file = folder.parent / f"{folder.name}.dvc"
    return dvc_file if dvc_file.is_file() and is_dvc_repo(config.root) else None


def publish_data(config, *, remote: str) -> str | None:
    """Push the pinned data to ``remote`` and return the run's pin (JSON: the ``.dvc``
    file's path in the checkout and its text), or None when the data is not pinned."""
    dvc_file = data_dvc_file(config)
    if dvc_file is None:
        return None
    relative = str(dvc_file.relative_to(config.root))
    pinned = pinned_version(dvc_file).md5
    folder = dvc_file.with_suffix("")
    here = directory_version(folder, state_dir=state_cache(config)).md5
    if here != pinned:  # the workers would pull the pinned version, not this one
        raise VersioningError(
            f"{folder} is not the version {relative} pins ({here} on disk, {pinned} pinned):"
            f" the workers read the pinned one. Run `dvc add {folder.name}` (or `mllife data"
            f" add`) and commit {relative}, or `dvc checkout {relative}` to go back"
        )
    try:
        _dvc(config.root, "push", "--quiet", *remote_args(remote), relative,
             lock_dir=config.state_dir)  # fmt: skip
    except VersioningError as exc:
        raise VersioningError(
            f"the workers read the data through the DVC remote, but pushing {relative}"
            f" failed: {exc}"
        ) from None
    return json.dumps({"file": relative, "text": dvc_file.read_text()})


def align_data(config, pin: str, *, remote: str) -> bool:
    """Make this checkout's data the version ``pin`` names (from :func:`publish_data`),
    pulling it from ``remote`` when it differs; True when something was pulled."""
    spec = json.loads(pin)
    target = config.root / spec["file"]
    out = yaml.safe_load(spec["text"])["outs"][0]
    folder = target.parent / out["path"]
    with file_lock(config.state_dir / "data-align.lock", timeout=600, what="aligning the data"):
        if _holds(config, target, spec["text"], folder, out["md5"]):
            return False
        if not is_dvc_repo(config.root):
            raise VersioningError(
                f"the run's data is pinned by DVC but {config.root} is not a DVC repository:"
                " use a clone of the project's git repository on every worker"
            )
        write_atomically(target, spec["text"].encode())
        _dvc(config.root, "pull", "--quiet", "--force", *remote_args(remote), spec["file"],
             lock_dir=config.state_dir)  # fmt: skip
        if not _holds(config, target, spec["text"], folder, out["md5"]):
            raise VersioningError(
                f"after `dvc pull {spec['file']}` the data in {folder} is still not version"
                f" {out['md5']}"
            )
    return True


def _holds(config, dvc_file: Path, text: str, folder: Path, md5: str) -> bool:
    if not folder.is_dir() or not dvc_file.is_file() or dvc_file.read_text() != text:
        return False
    return directory_version(folder, state_dir=state_cache(config)).md5 == md5
