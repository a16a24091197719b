"""Tables: manifest, contract (declared or frozen), cleaning, preprocessing, bad input."""

import json

import numpy as np
import polars as pl
import pytest

from mllife import DataError
from mllife.config.project import load_config
from mllife.data.defaults import write_breast_cancer
from mllife.data.stage import clean, clean_contract, raw_contract, read_raw, settle_contract
from mllife.preprocess.tables import TablePreprocessor

CONFIG = """
[data]
kind = "table"
path = "{path}"
target = "target"
{extra}
[[candidates]]
name = "lr"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
"""


def project(tmp_path, frame: pl.DataFrame | None, *, name="t.csv", extra="", raw=None):
    path = tmp_path / name
    if raw is not None:
        path.write_text(raw)
    elif name.endswith(".csv"):
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    (tmp_path / "mllife.toml").write_text(CONFIG.format(path=name, extra=extra))
    return load_config(tmp_path / "mllife.toml")


def passed_and_frozen(config) -> None:
    """What a run does: the raw contract passes, then the inferred contract is frozen."""
    raw = read_raw(config)
    assert raw_contract(config, raw).passed
    assert "frozen into" in settle_contract(config, raw)


def small(n=40):
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 5, n),
            "color": [["red", "blue"][i % 2] for i in range(n)],
            "target": [["yes", "no"][i % 2] for i in range(n)],
        }
    )


def test_breast_cancer_example_is_written_and_read(tmp_path):
    assert write_breast_cancer(tmp_path / "bc.parquet") == 569
    (tmp_path / "mllife.toml").write_text(CONFIG.format(path="bc.parquet", extra='id = "id"'))
    config = load_config(tmp_path / "mllife.toml")
    raw = read_raw(config)
    assert raw.manifest.height == 569 and len(raw.columns) == 30
    assert raw_contract(config, raw).passed
    assert not (tmp_path / "mllife.schema.json").exists()  # not before a run passed it
    settle_contract(config, raw)
    assert (tmp_path / "mllife.schema.json").is_file()  # frozen for the user to edit


def test_inferred_contract_is_frozen_and_then_enforced(tmp_path):
    config = project(tmp_path, small())
    passed_and_frozen(config)
    frozen = json.loads((tmp_path / "mllife.schema.json").read_text())["columns"]
    assert frozen["color"] == {
        "dtype": "category",
        "nullable": False,
        "categories": ["blue", "red"],
    }
    # New data outside the frozen range and with a new category now fails, by row.
    changed = small().with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(1000.0).otherwise(pl.col("x")).alias("x"),
        pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.lit("green"))
        .otherwise(pl.col("color"))
        .alias("color"),
    )
    changed.write_csv(tmp_path / "t.csv")
    result = raw_contract(config, read_raw(config))
    assert not result.passed
    rows = {(e["column"], e["row"]) for e in result.examples}
    assert ("x", 4) in rows and ("color", 6) in rows  # 1-based row numbers
    assert result.refused_rows == (4, 6) and "refused rows: 4, 6" in result.describe()


def test_missing_column_fails_the_contract(tmp_path):
    config = project(tmp_path, small())
    passed_and_frozen(config)
    small().drop("k").write_csv(tmp_path / "t.csv")
    result = raw_contract(config, read_raw(config))
    assert not result.passed and "missing column 'k'" in result.counts


def test_extra_column_fails_the_contract(tmp_path):
    config = project(tmp_path, small())
    passed_and_frozen(config)
    small().with_columns(pl.lit(1).alias("surprise")).write_csv(tmp_path / "t.csv")
    result = raw_contract(config, read_raw(config))
    assert not result.passed and "unexpected column 'surprise'" in result.counts


def test_wrong_dtype_fails_the_contract(tmp_path):
    config = project(tmp_path, small())
    passed_and_frozen(config)
    small().with_columns(pl.col("k").cast(pl.String) + "x").write_csv(tmp_path / "t.csv")
    result = raw_contract(config, read_raw(config))
    assert not result.passed and any(key.startswith("k:") for key in result.counts)


def test_declared_columns_are_the_contract(tmp_path):
    extra = (
        'columns = { x = { dtype = "float", min = -10, max = 10 }, k = { dtype = "int" },'
        ' color = { dtype = "category", categories = ["red"] } }'
    )
    config = project(tmp_path, small(), extra=extra)
    result = raw_contract(config, read_raw(config))
    assert not result.passed and list(result.counts) == ["color: isin(['red'])"]
    assert not (tmp_path / "mllife.schema.json").exists()


def test_nan_target_and_duplicates_are_dropped_with_row_numbers(tmp_path):
    frame = small(10)
    frame = pl.concat([frame, frame.head(1)])  # row 11 duplicates row 1
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("target")).alias("target")
    )
    config = project(tmp_path, frame)
    data = clean(config, read_raw(config))
    reasons = dict(zip(data.dropped["path"], data.dropped["reason"], strict=True))
    assert reasons["row 3"].startswith("missing label")
    assert reasons["row 11"] == "exact duplicate of row 1"
    assert data.rows.height == 9


def test_rows_that_differ_never_hash_alike_and_ordinary_rows_keep_their_hash(tmp_path):
    from mllife.data.tables import row_hashes

    # the reproduction: text joined with an unescaped separator made these equal
    frame = pl.DataFrame(
        {
            "a": ["p\x1fq", "p", None, "\x00", "", None],
            "b": ["r", "q\x1fr", "s", "s", "\x00", "\x00\x1f"],
            "target": ["yes", "no", "yes", "no", "yes", "no"],
        }
    )
    hashes = row_hashes(frame, ["a", "b"])
    assert len(set(hashes)) == 6, hashes
    config = project(tmp_path, frame, name="t.parquet")
    data = clean(config, read_raw(config))
    assert data.rows.height == 6 and data.dropped.height == 0
    # split keys of existing projects stay: an ordinary row hashes as it always has
    ordinary = pl.DataFrame({"a": ["x", None], "n": [1.5, None], "c": ["p", "q"]})
    assert row_hashes(ordinary, ["a", "n", "c"]) == [
        "2c3ad0c6c99e6d9d5f5f4f57caf1918b",
        "0eac5de57cc2b11fc962e053f45ed80d",
    ]


def test_missing_values_policy_drop(tmp_path):
    frame = small(10).with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise(pl.col("x")).alias("x")
    )
    config = project(tmp_path, frame, extra='missing = "drop"')
    data = clean(config, read_raw(config))
    assert data.dropped["path"].to_list() == ["row 5"]


def test_single_class_fails_the_clean_contract(tmp_path):
    config = project(tmp_path, small().with_columns(pl.lit("yes").alias("target")))
    result = clean_contract(config, clean(config, read_raw(config)))
    assert not result.passed and "label: at least 2 classes" in result.counts


def test_empty_table_is_a_clear_error(tmp_path):
    config = project(tmp_path, small().head(0))
    with pytest.raises(DataError, match="has no rows"):
        read_raw(config)


def test_missing_target_column_is_a_clear_error(tmp_path):
    config = project(tmp_path, small().drop("target"))
    with pytest.raises(DataError, match="target column 'target' is missing"):
        read_raw(config)


def test_table_preprocessor_imputes_scales_one_hot_and_round_trips():
    frame = pl.DataFrame(
        {
            "x": [1.0, None, 3.0, 5.0],
            "c": ["a", "b", None, "a"],
            "t": ["red fox", "lazy dog", "red dog", None],
        }
    )
    from mllife.config.project import ColumnConfig

    pre = TablePreprocessor(
        columns={
            "x": ColumnConfig(dtype="float", nullable=True),
            "c": ColumnConfig(dtype="category", nullable=True),
            "t": ColumnConfig(dtype="text", nullable=True),
        }
    )
    x = pre.fit_transform(frame)
    # text: word 1-2-grams (red, fox, lazy, dog, red fox, lazy dog, red dog) and character
    # 2-5-grams, sparse; with the texts beside them for a sentence encoder
    state = pre.state_["t"]
    assert len(state["word"]) == 7 and len(state["char"]) > 7
    assert x.shape == (4, pre.n_features) and pre.n_features == 1 + 2 + pre.width("t")
    assert x.texts == ["red fox", "lazy dog", "red dog", ""]
    dense = x.matrix.toarray()
    assert not np.isnan(dense).any()
    again = TablePreprocessor.from_state(json.loads(json.dumps(pre.state())))
    np.testing.assert_allclose(again.transform(frame).matrix.toarray(), dense)
    unseen = again.transform([{"x": 2.0, "c": "zebra", "t": "unknown words"}]).matrix.toarray()
    assert unseen[0, 1:3].tolist() == [0.0, 0.0]  # unseen category: all zeros


def test_dropped_inputs_are_listed_by_reason_with_row_ranges():
    from mllife.data.dropped import describe_dropped, number_ranges

    assert number_ranges([40, 3, 17, 18, 19, 18]) == "3, 17-19, 40"
    dropped = pl.DataFrame(
        {
            "path": ["row 3", "row 4", "row 9", "row 12"],
            "reason": ["exact duplicate of row 1", "exact duplicate of row 2",
                       "missing label (target 'y' is empty)", "exact duplicate of row 1"],
        }
    )  # fmt: skip
    assert describe_dropped(dropped) == [
        "exact duplicate (3): rows 3-4, 12",
        "missing label (1): rows 9",
    ]
    files = pl.DataFrame({"path": [f"a/{i}.png" for i in range(4)], "reason": ["unreadable"] * 4})
    assert describe_dropped(files, limit=2) == [
        "unreadable (4): a/0.png, a/1.png and 2 more (all in the report)"
    ]


def test_a_forbidden_column_stops_the_run_at_the_contract_naming_it(tmp_path):
    frame = small().with_columns(pl.Series("ssn", [f"{i:09d}" for i in range(40)]))
    config = project(tmp_path, frame, extra='forbidden = ["ssn"]')
    result = raw_contract(config, read_raw(config))
    assert not result.passed
    assert "forbidden column 'ssn' ([data] forbidden): remove it" in result.describe()
    # the same table without it passes
    config = project(tmp_path, frame.drop("ssn"), extra='forbidden = ["ssn"]')
    assert raw_contract(config, read_raw(config)).passed
