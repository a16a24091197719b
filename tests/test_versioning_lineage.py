"""DVC-versioned artifacts and one lineage, in a real git + DVC repository."""

import shutil
import subprocess
import sys

import pytest

from assets.runtime.run import run_lifecycle
from mllife.cli import main as cli
from mllife.config.project import load_config
from mllife.models.registry import champion_ref
from mllife.storage.store import Store
from tests.conftest import built_once, copy_project, make_project


def _sh(root, *args):
    done = subprocess.run(args, cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _dvc_project(root, digits):
    config_path = make_project(root, digits, epochs=2)
    (root / ".gitignore").write_text("/.mllife/\n")  # as in the repo: state is not committed
    _sh(root, "git", "init", "-q")
    _sh(root, sys.executable, "-m", "dvc", "init", "-q")
    _sh(root, sys.executable, "-m", "dvc", "add", "-q", "data")
    return config_path


@pytest.fixture(scope="session")
def digits_folder(small_digits_folder):
    """Versioning and lineage are about files and their hashes, not accuracy: the small
    digits (400 images) do."""
    return small_digits_folder


@pytest.fixture(scope="session")
def dvc_project(tmp_path_factory, worker_id, digits_folder):
    """A project in a git + DVC repository after one successful run, made once per
    session."""

    def build(base):
        outcome = run_lifecycle(_dvc_project(base / "a", digits_folder), log_level="WARNING")
        assert outcome.success, "\n".join(outcome.lines)

    return built_once(tmp_path_factory, worker_id, "dvc_project", build) / "a" / "mllife.toml"


@pytest.fixture
def dvc_runs(dvc_project, clean_small_run, tmp_path):
    """A private copy of the DVC project, and one of the session's clean run of the same
    data and config in a plain folder (which the DVC project must reproduce)."""
    return (
        copy_project(dvc_project, tmp_path / "a" / "p"),
        copy_project(clean_small_run, tmp_path / "b" / "p"),
    )


def test_run_tracks_artifacts_and_dvc_status_is_clean(dvc_runs):
    config = load_config(dvc_runs[0])
    assert (config.root / "artifacts.dvc").is_file()
    assert list((config.artifacts_dir / "splits").glob("*.parquet"))
    status = _sh(config.root, sys.executable, "-m", "dvc", "status", "-q")
    assert status.strip() == ""


def test_same_data_and_config_reproduce_split_and_models(dvc_runs):
    stores = [Store(load_config(p).store_path) for p in dvc_runs]
    splits = [
        s.query("SELECT split_version FROM splits")["split_version"].to_list() for s in stores
    ]
    assert splits[0] == splits[1]
    models = [s.models() for s in stores]
    sklearn = [set(m.filter(m["kind"] == "sklearn")["model_hash"]) for m in models]
    assert sklearn[0] == sklearn[1] and sklearn[0]
    metrics = [
        s.query(
            "SELECT e.value FROM evaluations e JOIN models m USING (model_hash)"
            " WHERE m.kind = 'torch' AND e.metric = 'accuracy' AND e.split = 'validation'"
        )["value"].to_list()
        for s in stores
    ]
    assert metrics[0] == metrics[1] and metrics[0]


def test_checkout_restores_a_deleted_model_and_refuses_a_tampered_copy(dvc_runs, capsys):
    config = load_config(dvc_runs[0])
    store = Store(config.store_path)
    ref = champion_ref(store)
    path = ref.path(config.artifacts_dir)
    original = path.read_bytes()
    path.unlink()
    assert cli(["--config", str(config.path), "checkout", ref.model_hash[:10]]) == 0
    assert path.read_bytes() == original
    path.write_bytes(original + b"tampered")
    from mllife._errors import ArtifactError
    from mllife.models.registry import load_model

    with pytest.raises(ArtifactError, match="changed or corrupted"):
        load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    assert cli(["--config", str(config.path), "checkout", ref.model_hash[:10]]) == 0
    assert path.read_bytes() == original


def test_lineage_names_the_chain_with_the_dagster_data_versions(dvc_runs, capsys):
    config = load_config(dvc_runs[0])
    store = Store(config.store_path)
    ref = champion_ref(store)
    assert cli(["--config", str(config.path), "lineage", ref.model_hash[:8]]) == 0
    out = capsys.readouterr().out
    model = store.model_row(ref.model_hash)
    for expected in (model["data_version"], model["split_version"], ref.model_hash):
        assert expected in out
    assert "evaluation     validation: accuracy" in out and "deployment" in out
    assert "passed the policy" in out
    # the same hashes are the Dagster data versions of the assets
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(config.dagster_home))
    versions = {}
    for key in ("raw_data", "splits", f"candidate_{ref.name}"):
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        versions[key] = event.asset_materialization.tags["dagster/data_version"]
    assert versions == {
        "raw_data": model["data_version"],
        "splits": model["split_version"],
        f"candidate_{ref.name}": ref.model_hash,
    }


def test_push_pull_to_a_local_remote_and_a_broken_remote_fails_clearly(dvc_runs, tmp_path):
    config = load_config(dvc_runs[0])
    remote = tmp_path / "remote"
    _sh(config.root, sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(remote))
    assert cli(["--config", str(config.path), "push"]) == 0
    assert any(remote.rglob("*"))
    shutil.rmtree(config.root / ".dvc" / "cache")
    ref = champion_ref(Store(config.store_path))
    ref.path(config.artifacts_dir).unlink()
    # not in the cache any more: checkout fetches it from the remote
    assert cli(["--config", str(config.path), "checkout", ref.model_hash]) == 0
    assert ref.path(config.artifacts_dir).is_file()
    from mllife._errors import VersioningError
    from mllife.storage.artifacts import push, track_artifacts

    with pytest.raises(VersioningError, match="dvc push"):
        push(config, remote="nope-not-configured")
    # a run configured to push to a broken remote still tracks locally, with a warning
    result = track_artifacts(config, push_to="nope-not-configured")
    assert result.version is not None and not result.pushed
    assert "push to 'nope-not-configured' failed" in result.warning


def test_data_add_versions_new_images_and_refuses_bad_ones(dvc_runs, tmp_path, digits_folder):
    config = load_config(dvc_runs[0])
    before = (config.root / "data.dvc").read_text()
    incoming = tmp_path / "incoming" / "3"
    incoming.mkdir(parents=True)
    source = sorted((digits_folder / "3").glob("*.png"))[0]
    from PIL import Image

    Image.open(source).rotate(90).save(incoming / "new.png")
    (tmp_path / "bad" / "3").mkdir(parents=True)
    (tmp_path / "bad" / "3" / "broken.png").write_bytes(b"not a png")
    assert cli(["--config", str(config.path), "data", "add", str(tmp_path / "bad")]) == 2
    assert (config.root / "data.dvc").read_text() == before  # nothing added
    assert cli(["--config", str(config.path), "data", "add", str(tmp_path / "incoming")]) == 0
    assert (config.data_path / "3" / "new.png").is_file()
    assert (config.root / "data.dvc").read_text() != before
    from mllife.data.stage import current_data_version
    from mllife.storage.dvc import pinned_version

    assert current_data_version(config) == pinned_version(config.root / "data.dvc").md5
