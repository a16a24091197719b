"""Manual promotion and rollback, and crash safety: SIGKILL at each step of a switch."""

import subprocess
import sys

import pytest

from mllife import PromotionError
from mllife.config.project import load_config
from mllife.promotion.deploy import promote_model, rollback
from mllife.storage.store import Store
from tests.conftest import RecordedModels

CONFIG = (
    '[[candidates]]\nname = "lr"\nkind = "sklearn"\n'
    'estimator = "sklearn.linear_model.LogisticRegression"\n'
)


@pytest.fixture
def project(tmp_path, digits_folder):
    (tmp_path / "mllife.toml").write_text(CONFIG)
    config = load_config(tmp_path / "mllife.toml")
    store = Store(config.store_path)
    models = RecordedModels(config, store, digits_folder, stride=9)
    hashes = [models.new(c).model_hash for c in (0.01, 1.0, 100.0)]
    return config, store, hashes


def test_promote_then_rollback_records_history(project):
    config, store, (a, b, c) = project
    promote_model(a[:8], config=config, store=store, reason="first")
    promote_model(b, config=config, store=store, reason="better on hats")
    assert store.champion().model_hash == b
    back = rollback(config=config, store=store, reason="client complaint")
    assert back.model_hash == a and back.previous_hash == b and back.action == "rollback"
    promote_model(c, config=config, store=store, reason="third")
    to_first = rollback(config=config, store=store, reason="back to #2", to="#2")
    assert to_first.model_hash == b
    history = store.deployments()
    assert history["action"].to_list() == ["promote", "promote", "rollback", "promote", "rollback"]
    assert history["reason"][1] == "manual: better on hats"


def test_rollback_works_when_the_newer_artifact_is_gone(project):
    config, store, (a, b, _) = project
    promote_model(a, config=config, store=store, reason="one")
    promote_model(b, config=config, store=store, reason="two")
    (config.artifacts_dir / f"models/{b}.pkl").unlink()
    assert rollback(config=config, store=store, reason="b vanished").model_hash == a


def test_refusals_leave_the_champion_unchanged(project):
    config, store, (a, b, _) = project
    with pytest.raises(PromotionError, match="nothing is deployed"):
        rollback(config=config, store=store, reason="x")
    promote_model(a, config=config, store=store, reason="one")
    with pytest.raises(PromotionError, match="first one"):
        rollback(config=config, store=store, reason="x")
    with pytest.raises(PromotionError, match="already the champion"):
        promote_model(a, config=config, store=store, reason="again")
    with pytest.raises(PromotionError, match="no model in the store"):
        promote_model("ffffff", config=config, store=store, reason="x")
    path = config.artifacts_dir / f"models/{b}.pkl"
    path.write_bytes(path.read_bytes()[:-10])  # a corrupted artifact is refused
    with pytest.raises(Exception, match="changed or corrupted"):
        promote_model(b, config=config, store=store, reason="x")
    assert store.champion().model_hash == a and store.deployments().height == 1


@pytest.mark.parametrize(
    "point", ["promotion:verified", "deployment:before-insert", "deployment:before-commit"]
)
def test_a_kill_at_any_step_leaves_the_old_champion_intact(project, point):
    config, store, (a, b, _) = project
    promote_model(a, config=config, store=store, reason="one")
    code = (
        "from mllife.config.project import load_config; from mllife.storage.store import Store;"
        "from mllife.promotion.deploy import promote_model;"
        f"c = load_config({str(config.path)!r});"
        f"promote_model({b!r}, config=c, store=Store(c.store_path), reason='crash')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env={"MLLIFE_CRASH_AT": point, "PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == -9  # really killed
    assert store.champion().model_hash == a
    assert store.deployments().height == 1
    # ... and the same promotion completes when run again without the fault
    promote_model(b, config=config, store=store, reason="retry")
    assert store.champion().model_hash == b


def test_a_worn_test_set_is_flagged_by_status(project, capsys):
    from mllife.cli import main as cli
    from mllife.evaluation.test_budget import sealed_set_wear

    config, store, (a, _, _) = project
    promote_model(a, config=config, store=store, reason="one")
    split = store.model_row(a)["split_version"]
    for _ in range(3):
        store.record_test_read(split_version=split, model_hash=a, asset="evaluation_lr",
                               run_id=None, n_rows=10)  # fmt: skip
    assert not sealed_set_wear(store, split, 3).worn
    store.record_test_read(split_version=split, model_hash=a, asset="evaluation_lr",
                           run_id=None, n_rows=10)  # fmt: skip
    wear = sealed_set_wear(store, split, 3)
    assert wear.worn and "has been read 4 times of a budget of 3" in wear.describe()
    assert "worn out" in wear.describe() and "mllife data add" in wear.describe()
    config.path.write_text(config.path.read_text() + "\n[promotion]\nmax_test_reads = 3\n")
    assert cli(["--config", str(config.path), "status"]) == 0
    assert "WARNING: the sealed test set" in capsys.readouterr().out
