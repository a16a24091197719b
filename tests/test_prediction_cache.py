"""The sealed test set's probabilities kept per model and rows (``prediction_cache``): a
re-decision (a policy edit, a new champion to compare with) reuses them instead of
loading the model again, and anything that differs is a miss, never a wrong reuse."""

from types import SimpleNamespace

import numpy as np
import polars as pl

from mllife.data.split import SplitSet
from mllife.evaluation.prediction_cache import cached_test_proba, remember_test_proba


def _splits(keys, *, data_version="d1", split_version="s1") -> SplitSet:
    rows = pl.DataFrame({"sha256": keys, "split": ["test"] * len(keys), "label": ["a"] * 3})
    return SplitSet(rows=rows, data_version=data_version, split_version=split_version)


def test_kept_probabilities_come_back_only_for_the_same_model_and_rows(tmp_path):
    config = SimpleNamespace(state_dir=tmp_path)
    splits = _splits(["k1", "k2", "k3"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert cached_test_proba(config, "m1", splits, splits.rows) is None
    remember_test_proba(config, "m1", splits, splits.rows, ["a", "b"], proba)

    classes, kept = cached_test_proba(config, "m1", splits, splits.rows)
    assert classes == ["a", "b"] and np.array_equal(kept, proba)
    # another model, other rows, the same rows in another order, other versions: misses
    assert cached_test_proba(config, "m2", splits, splits.rows) is None
    assert cached_test_proba(config, "m1", splits, splits.rows.reverse()) is None
    for changed in (_splits(["k1", "k2", "k3"], data_version="d2"),
                    _splits(["k1", "k2", "k4"])):  # fmt: skip
        assert cached_test_proba(config, "m1", changed, changed.rows) is None


def test_a_tampered_entry_is_a_miss(tmp_path):
    config = SimpleNamespace(state_dir=tmp_path)
    splits = _splits(["k1", "k2", "k3"])
    remember_test_proba(config, "m1", splits, splits.rows, [0, 1], np.full((3, 2), 0.5))
    (entry,) = (tmp_path / "cache" / "test-proba").glob("*.proba.npy")
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0xFF
    entry.write_bytes(bytes(data))
    assert cached_test_proba(config, "m1", splits, splits.rows) is None
