"""Pickles written by the layout before the package move still load: step outputs of an
earlier run (so ``--resume`` works across the move) and scikit-learn artifacts (whose
table preprocessor holds ``ColumnConfig`` objects). The two files under ``tests/legacy``
were written by the old layout (commit 9d95294, ``mllife.split.SplitSet`` and so on)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.graph.step_outputs import RunScopedIOManager, _signed_as
from mllife.data.split import SplitSet
from mllife.models.sklearn_model import SklearnModel
from mllife.monitoring.batch import BatchDrift
from mllife.monitoring.drift import DriftReport
from mllife.promotion.challenger import Challenger  # noqa: F401  (a moved class, importable)
from mllife.promotion.deploy import PromotionResult
from mllife.promotion.gates import Gate
from mllife.promotion.policy import Decision
from mllife.storage.pickles import loads
from mllife.storage.signing import sign
from mllife.storage.store import Deployment

LEGACY = Path(__file__).parent / "legacy"


def test_step_outputs_pickled_by_the_old_layout_load_as_the_new_classes():
    values = loads((LEGACY / "old_layout_values.pickle").read_bytes())
    assert b"mllife.split" in (LEGACY / "old_layout_values.pickle").read_bytes()
    assert isinstance(values["splits"], SplitSet) and values["splits"].split_version == "s1"
    assert isinstance(values["decision"], Decision)
    assert isinstance(values["decision"].gates[0], Gate)
    assert isinstance(values["promotion"], PromotionResult)
    assert isinstance(values["deployment"], Deployment)
    assert isinstance(values["drift"], BatchDrift) and isinstance(
        values["drift"].report, DriftReport
    )
    assert values["ref"].model_hash == "d" * 64


def test_a_signed_old_layout_step_output_loads_through_the_io_manager(tmp_path):
    """What `mllife run --resume` does with a step output of a run made before the move."""
    manager = RunScopedIOManager(base_dir=str(tmp_path / "storage"), key_path=str(tmp_path / "k"))
    path = manager.path_for("run1", __import__("dagster").AssetKey("splits"))
    path.parent.mkdir(parents=True)
    legacy = (LEGACY / "old_layout_values.pickle").read_bytes()
    context = _signed_as("run1", __import__("dagster").AssetKey("splits"))
    path.write_bytes(sign(legacy, key_path=Path(manager.key_path), context=context))
    assert isinstance(manager.load_value("run1", "splits")["splits"], SplitSet)


def test_a_scikit_learn_artifact_of_the_old_layout_loads_and_predicts():
    model = SklearnModel.from_trusted_bytes((LEGACY / "old_layout_table_model.pkl").read_bytes())
    table = pl.DataFrame({"a": [0.0, 5.0], "b": ["x", "y"]})
    assert list(model.predict(table)) == ["low", "high"]
