"""What each table column is worth (permutation importance with an interval) and what it
costs (#45, Data 2 and 3), and the "not beneficial" flag over two runs."""

from __future__ import annotations

import polars as pl
import pytest

from mllife.evaluation.importance import ColumnValue, column_value, not_beneficial
from mllife.models.registry import champion_ref, load_model
from tests.serving import table_project


def test_column_value_finds_what_the_model_uses_and_what_it_costs(tmp_path):
    setup = table_project(tmp_path / "p")
    config, store = setup["config"], setup["store"]
    model = load_model(champion_ref(store), artifacts_dir=config.artifacts_dir, store=store)
    table = pl.read_parquet(config.data_path).sample(150, seed=1)
    rows, labels = table.drop("id", "target"), table["target"].to_list()
    values = column_value(model, rows, labels, repeats=5)
    assert [v.column for v in values] != list(rows.columns)  # most valuable first
    assert values[0].beneficial and values[0].importance >= values[-1].importance
    assert any(v.low <= 0 <= v.high for v in values)  # some column adds nothing visible
    assert all(v.width == 1 and v.micros_per_row > 0 for v in values)
    with pytest.raises(ValueError, match="too few"):
        column_value(model, rows.head(10), labels[:10])
    with pytest.raises(ValueError, match="labels"):
        column_value(model, rows, labels[:-1])


def test_a_column_is_not_beneficial_only_after_two_runs_without_value():
    now = [ColumnValue("a", 0.1, 0.05, 0.15, 1, 1.0), ColumnValue("b", 0.0, -0.01, 0.01, 1, 1.0)]
    assert not_beneficial(now, {}) == []  # one run is not enough
    assert not_beneficial(now, {"a": (-0.1, 0.1), "b": (-0.02, 0.02)}) == ["b"]
    assert not_beneficial(now, {"b": (0.01, 0.03)}) == []  # it was worth something before
