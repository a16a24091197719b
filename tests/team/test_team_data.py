"""The team profile's data through a DVC remote (issue 23): the submitter pushes the
version its ``data.dvc`` pins; a worker whose checkout holds other data (edited, stale
or none at all) pulls exactly that version before a step reads a file."""

import json
import shutil
import subprocess
import sys

import pytest

from mllife._errors import VersioningError
from mllife.config.project import PROFILE_VARIABLE, load_config
from mllife.storage.dvc import directory_version
from mllife.storage.team_data import align_data, publish_data
from tests.conftest import make_project

DVC = [sys.executable, "-m", "dvc"]
TEAM = '\n[team]\nstorage = "{storage}"\n\n[versioning]\nremote = "team"\npush = true\n'


def _sh(root, *command):
    subprocess.run(command, cwd=root, check=True, capture_output=True)


@pytest.fixture
def submitted(tmp_path, digits_folder, monkeypatch):
    """A git + DVC project whose data is pinned and pushed; returns (config, pin)."""
    monkeypatch.setenv(PROFILE_VARIABLE, "team")
    extra = TEAM.format(storage=tmp_path / "shared")
    config_path = make_project(tmp_path / "submitter", digits_folder, extra=extra)
    root = config_path.parent
    _sh(root, "git", "init", "-q")
    _sh(root, *DVC, "init", "-q")
    _sh(root, *DVC, "remote", "add", "team", str(tmp_path / "remote"))
    _sh(root, *DVC, "add", "-q", "data")
    config = load_config(config_path)
    return config, publish_data(config, remote="team")


def _worker(config, folder):
    shutil.copytree(config.root, folder, ignore=shutil.ignore_patterns(".mllife"))
    return load_config(folder / "mllife.toml")


def test_a_worker_with_other_data_pulls_the_pinned_version(submitted, tmp_path):
    config, pin = submitted
    assert json.loads(pin)["file"] == "data.dvc"
    pinned = directory_version(config.root / "data").md5
    worker = _worker(config, tmp_path / "worker")
    edited = next((worker.root / "data" / "digits" / "3").iterdir())
    edited.write_bytes(b"not the pinned image")
    (worker.root / "data" / "digits" / "extra.png").write_bytes(b"a stray file")
    assert align_data(worker, pin, remote="team") is True
    assert directory_version(worker.root / "data").md5 == pinned
    assert align_data(worker, pin, remote="team") is False  # already there: no pull

    empty = _worker(config, tmp_path / "fresh-clone")  # a clone: data.dvc, no data
    shutil.rmtree(empty.root / "data")
    assert align_data(empty, pin, remote="team") is True
    assert directory_version(empty.root / "data").md5 == pinned


def test_a_version_missing_from_the_remote_is_a_clear_error(submitted, tmp_path):
    config, pin = submitted
    shutil.rmtree(tmp_path / "remote")  # the remote lost it
    worker = _worker(config, tmp_path / "worker")
    shutil.rmtree(worker.root / "data")
    shutil.rmtree(worker.root / ".dvc" / "cache", ignore_errors=True)
    with pytest.raises(VersioningError) as error:
        align_data(worker, pin, remote="team")
    assert "dvc pull" in str(error.value) and "data.dvc" in str(error.value)


def test_a_worker_outside_a_dvc_repository_is_told_to_clone(submitted, tmp_path):
    config, pin = submitted
    worker = _worker(config, tmp_path / "worker")
    shutil.rmtree(worker.root / ".dvc")
    shutil.rmtree(worker.root / "data")
    with pytest.raises(VersioningError) as error:
        align_data(worker, pin, remote="team")
    assert "not a DVC repository" in str(error.value)


def test_a_submitter_whose_data_is_not_what_data_dvc_pins_is_refused(submitted):
    """Files dropped into data/ without `dvc add`: the workers would pull the pinned
    (older) version, so the run is refused before it is submitted, saying what to do."""
    config, _ = submitted
    (config.root / "data" / "digits" / "3" / "new.png").write_bytes(b"a new image")
    with pytest.raises(VersioningError) as error:
        publish_data(config, remote="team")
    assert "is not the version data.dvc pins" in str(error.value)
    assert "dvc add data" in str(error.value)
