"""The table preprocessor gives the same features from a polars frame (training), row
dicts (scripts) and a contract-checked ColumnBatch (serving); the batch logs exactly the
rows it was built from."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mllife._errors import DataError
from mllife.config.project import ColumnConfig
from mllife.preprocess.column_batch import ColumnBatch
from mllife.preprocess.tables import TablePreprocessor
from mllife.serve._inputs import InputError, RowContract

COLUMNS = {
    "size": ColumnConfig(dtype="float"),
    "weight": ColumnConfig(dtype="float", nullable=True),
    "count": ColumnConfig(dtype="int", nullable=True),
    "colour": ColumnConfig(dtype="category", nullable=True, categories=["red", "green", "blue"]),
    "flag": ColumnConfig(dtype="bool"),
}

_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_row = st.fixed_dictionaries(
    {
        "size": st.one_of(_finite, st.integers(-1000, 1000)),
        "weight": st.one_of(st.none(), _finite),
        "count": st.one_of(st.none(), st.integers(-(2**40), 2**40)),
        "colour": st.one_of(st.none(), st.sampled_from(["red", "green", "blue"])),
        "flag": st.booleans(),
    }
)


def _frame(rows: list[dict]) -> pl.DataFrame:
    schema = {
        "size": pl.Float64,
        "weight": pl.Float64,
        "count": pl.Int64,
        "colour": pl.String,
        "flag": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)


def _fitted(train: list[dict]) -> TablePreprocessor:
    pre = TablePreprocessor(columns=COLUMNS)
    pre.fit_transform(_frame(train))
    return pre


@settings(max_examples=60, deadline=None)
@given(
    train=st.lists(_row, min_size=2, max_size=30), served=st.lists(_row, min_size=1, max_size=20)
)
def test_frame_records_and_checked_batch_give_the_same_features(train, served):
    pre = _fitted(train)
    batch = RowContract(COLUMNS).check(served)
    assert isinstance(batch, ColumnBatch) and len(batch) == len(served)
    outcomes = []
    for rows in (_frame(served), served, batch):
        try:
            outcomes.append(pre.transform(rows).numpy())
        except DataError as exc:  # a value float32 cannot hold: every path must refuse it
            outcomes.append(str(exc))
    from_frame, from_records, from_batch = outcomes
    if isinstance(from_records, str):
        assert from_frame == from_records == from_batch
        return
    np.testing.assert_allclose(from_records, from_frame, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(from_batch, from_records)
    assert np.isfinite(from_records).all()


@settings(max_examples=60, deadline=None)
@given(served=st.lists(_row, min_size=1, max_size=20))
def test_the_logged_struct_holds_each_checked_row_with_sorted_fields(served):
    batch = RowContract(COLUMNS).check(served)
    logged = batch.to_struct()
    assert [f.name for f in logged.dtype.fields] == sorted(COLUMNS)
    assert logged.to_list() == served  # exact: 5 == 5.0
    # the same rows give the same struct, whatever the key order they came in
    again = RowContract(COLUMNS).check([dict(reversed(list(r.items()))) for r in served])
    assert again.to_struct().to_list() == logged.to_list()


def test_batches_concatenate_in_order_and_the_general_constructor_agrees():
    rows = [
        {"size": 1, "weight": None, "count": 3, "colour": "red", "flag": True},
        {"size": 2.5, "weight": 0.5, "count": None, "colour": None, "flag": False},
    ]
    contract = RowContract(COLUMNS)
    fast = contract.check(rows)
    general = ColumnBatch.from_rows(
        rows, {k: v.dtype for k, v in COLUMNS.items()}, number_names=["size"]
    )
    assert fast.to_struct().to_list() == general.to_struct().to_list() == rows
    both = ColumnBatch.concat([fast, contract.check(rows[::-1])])
    assert both.to_struct().to_list() == [*rows, *rows[::-1]]
    # rows the fast path doubts (their sum overflows) but that are valid take the
    # general constructor, with the same layout, so the log can still concatenate them
    huge = [{**rows[0], "weight": 1e308}, {**rows[1], "weight": 1e308}]
    slow = contract.check(huge)
    assert slow.number_names == fast.number_names
    assert ColumnBatch.concat([fast, slow]).to_struct().to_list() == [*rows, *huge]
    with pytest.raises(ValueError, match="different layouts"):
        ColumnBatch.concat([fast, RowContract({"size": COLUMNS["size"]}).check([{"size": 1.0}])])


def test_integers_beyond_64_bits_are_refused_with_the_column_named():
    contract = RowContract(COLUMNS)
    row = {"size": 1.0, "weight": None, "count": 2**63, "colour": None, "flag": True}
    with pytest.raises(InputError, match=r"column 'count' is 9223372036854775808, outside"):
        contract.check([row])
    with pytest.raises(InputError, match=r"column 'size' is 1000000.*too large for a 64-bit"):
        contract.check([{**row, "count": 1, "size": 10**400}])
    with pytest.raises(InputError, match=r"column 'weight' is 1000000.*too large"):
        contract.check([{**row, "count": 1, "weight": 10**400}])


def test_a_batch_missing_a_feature_the_model_needs_is_a_clear_error():
    pre = _fitted(
        [
            {"size": 1.0, "weight": 2.0, "count": 3, "colour": "red", "flag": True},
            {"size": 2.0, "weight": 1.0, "count": 4, "colour": "blue", "flag": False},
        ]
    )
    partial = RowContract({"size": COLUMNS["size"]}).check([{"size": 1.0}])
    with pytest.raises(DataError, match="lack feature column 'weight'"):
        pre.transform(partial)


def test_a_value_too_far_out_for_a_float32_feature_is_refused_on_every_path():
    # The contract allows any finite number when it declares no bounds; standardized,
    # 1e300 would become inf in float32 and the model would fail on it instead.
    pre = _fitted(
        [
            {"size": 1.0, "weight": 2.0, "count": 3, "colour": "red", "flag": True},
            {"size": 2.0, "weight": 1.0, "count": 4, "colour": "blue", "flag": False},
        ]
    )
    ok = {"size": 1.5, "weight": 1.0, "count": 3, "colour": "red", "flag": True}
    far = [ok, {**ok, "weight": -1e300}]
    says = r"row 1, column 'weight' is -1e\+300, too far from the training data"
    with pytest.raises(DataError, match=says):
        pre.transform(far)
    with pytest.raises(DataError, match=says):
        pre.transform(RowContract(COLUMNS).check(far))
    with pytest.raises(DataError, match=says):
        pre.transform(_frame(far))
    assert pre.transform([ok]).isfinite().all()


def test_a_column_constant_up_to_rounding_scales_as_a_constant_one():
    rows = [
        {
            "size": 5.7e-98 * (1 + 1e-15 * i),
            "weight": 1.0,
            "count": 1,
            "colour": "red",
            "flag": True,
        }
        for i in range(3)
    ]
    pre = _fitted(rows)
    assert pre.state_["size"]["std"] == 1.0
    served = pre.transform([{**rows[0], "size": 1.0}]).numpy()
    assert served[0, 0] == pytest.approx(1.0)
