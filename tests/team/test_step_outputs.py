"""Step outputs addressed by a URL (issue 23): the IO manager takes a folder or any
fsspec URL (``[team] step_outputs``), so the values passed between steps can live on
object storage that every worker reaches. ``memory://`` stands in for a bucket here: a
real Dagster run writes through fsspec and a second step reads back through it."""

import os
import pickle

import dagster as dg
import pytest
from upath import UPath

from assets.graph.step_outputs import RunScopedIOManager
from mllife._errors import ArtifactError, ConfigError, ServiceError
from mllife.config.project import PROFILE_VARIABLE, load_config
from mllife.storage.services import check_step_outputs, check_team_storage
from tests.conftest import SMALL_CONFIG


@dg.asset
def numbers() -> list[int]:
    return [1, 2, 3]


@dg.asset
def total(numbers: list[int]) -> int:
    return sum(numbers)


def test_a_run_passes_values_through_an_fsspec_url(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    base = f"memory://bucket-{os.getpid()}/steps"
    manager = RunScopedIOManager(base_dir=base, key_path=str(tmp_path / "storage.key"))
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        result = dg.materialize(
            [numbers, total], resources={"io_manager": manager}, instance=instance
        )
        assert result.success
        assert result.output_for_node("total") == 6
        stored = manager.path_for(result.run_id, dg.AssetKey("total"))
        assert isinstance(stored, UPath) and str(stored).startswith("memory://")
        assert stored.is_file() and manager.load_value(result.run_id, "total") == 6
        # no temporary object is left beside the values
        names = sorted(p.name for p in stored.parent.iterdir())
        assert names == ["numbers", "total"]

        # a genuine, validly signed value of another asset or run swapped in: refused,
        # naming what it is and where it was put
        genuine = stored.read_bytes()
        stored.write_bytes(manager.path_for(result.run_id, dg.AssetKey("numbers")).read_bytes())
        with pytest.raises(ArtifactError, match=r"genuine value of asset numbers of run .*"
                           r"in the place of asset total of run"):  # fmt: skip
            manager.load_value(result.run_id, "total")
        other_run = manager.path_for("another-run", dg.AssetKey("total"))
        other_run.parent.mkdir(parents=True, exist_ok=True)
        other_run.write_bytes(genuine)
        with pytest.raises(ArtifactError, match=r"in the place of asset total of run another-run"):
            manager.load_value("another-run", "total")
        stored.write_bytes(genuine)
        assert manager.load_value(result.run_id, "total") == 6

        # a value swapped in on the bucket is refused, not unpickled
        stored.write_bytes(pickle.dumps(7))
        assert "signature" in manager.unusable(result.run_id, dg.AssetKey("total"))
        only_total = materialize_total(manager, instance)
        assert only_total.success  # `total` reads `numbers` of the earlier run, signed
        manager.path_for(result.run_id, dg.AssetKey("numbers")).write_bytes(b"not signed")
        refused = materialize_total(manager, instance)
        assert not refused.success
        (failure,) = refused.get_step_failure_events()
        assert "is not loaded" in failure.event_specific_data.error.message


def materialize_total(manager, instance) -> dg.ExecuteInProcessResult:
    """``total`` alone: its input is the stored value of an earlier run's ``numbers``."""
    return dg.materialize(
        [numbers, total],
        selection=dg.AssetSelection.assets("total"),
        resources={"io_manager": manager},
        instance=instance,
        raise_on_error=False,
    )


def _team_config(tmp_path, monkeypatch, step_outputs: str):
    team = f'\n[team]\nstorage = "shared"\nstep_outputs = "{step_outputs}"\n'
    (tmp_path / "mllife.toml").write_text(SMALL_CONFIG.format(epochs=1, extra=team))
    monkeypatch.setenv(PROFILE_VARIABLE, "team")
    return load_config(tmp_path / "mllife.toml")


def test_the_team_profile_uses_the_configured_url(tmp_path, monkeypatch):
    config = _team_config(tmp_path, monkeypatch, "memory://team/steps")
    assert config.steps_url == "memory://team/steps"
    check_team_storage(config)  # both writable: no error
    monkeypatch.setenv(PROFILE_VARIABLE, "local")  # the default keeps its local folder
    assert load_config(tmp_path / "mllife.toml").steps_url == str(config.dagster_home / "storage")


def test_an_unknown_filesystem_is_a_config_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as error:
        _team_config(tmp_path, monkeypatch, "nosuchfs://bucket/steps")
    assert "nosuchfs" in str(error.value) and "step_outputs" in str(error.value)


@pytest.fixture
def uninstalled_filesystem():
    """A protocol fsspec knows but whose package is not installed (as s3 without s3fs):
    registered for the test, so the error is provoked whatever this machine has."""
    from fsspec.registry import known_implementations, register_implementation

    register_implementation(
        "nopkgfs", "mllife_absent_fs_package.FileSystem",
        errtxt="Install mllife-absent-fs to access nopkgfs",
    )  # fmt: skip
    yield "nopkgfs"
    known_implementations.pop("nopkgfs")


def test_a_missing_filesystem_package_names_it_and_the_setting(uninstalled_filesystem):
    with pytest.raises(ServiceError) as error:
        check_step_outputs(f"{uninstalled_filesystem}://bucket/steps")
    message = str(error.value)
    assert "team.step_outputs" in message and "Install mllife-absent-fs" in message


def test_an_unwritable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ServiceError) as error:
        check_step_outputs(f"file://{blocker}/steps")
    assert "team.step_outputs" in str(error.value) and "not writable" in str(error.value)
