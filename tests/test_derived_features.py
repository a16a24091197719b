"""Derived features (#45, `[features] derive`): a function of the project's own adds
columns; the contract sees them, the model carries the function's source, and a server
computes them from what clients send, even after the file changed."""

from __future__ import annotations

import polars as pl
import pytest

from mllife._errors import DataError
from mllife.config.project import load_config
from tests.serving import TABLE_CONFIG, ServerProcess

FEATURES = """
import polars as pl


def add(frame):
    return frame.select(
        (pl.col("mean_area") / pl.col("mean_radius")).alias("area_per_radius"),
        (pl.col("worst_texture") - pl.col("mean_texture")).alias("texture_growth"),
    )
"""


def _project(root, features: str = FEATURES):
    from mllife.data.defaults import write_breast_cancer

    root.mkdir(parents=True)
    (root / "mllife.toml").write_text(
        TABLE_CONFIG.format(serving="") + '\n[features]\nderive = "features:add"\n'
    )
    (root / "features.py").write_text(features)
    config = load_config(root / "mllife.toml")
    write_breast_cancer(config.data_path)
    return config


def test_a_model_carries_its_derived_features_to_the_server(tmp_path):
    from mllife.config.project import CandidateConfig
    from mllife.data.contract_file import load_contract
    from mllife.data.stage import raw_contract, read_raw, settle_contract
    from mllife.models import build_model
    from mllife.models.registry import save_model
    from mllife.preprocess.inputs import make_preprocessor
    from mllife.promotion.deploy import promote_model
    from mllife.serve.keys import create_key
    from mllife.storage.store import Store

    config = _project(tmp_path / "p")
    raw = read_raw(config)
    assert {"area_per_radius", "texture_growth"} <= set(raw.manifest.columns)
    assert raw_contract(config, raw).passed
    settle_contract(config, raw)  # frozen with the derived columns marked
    columns = load_contract(None, config.data, config.schema_path).columns
    assert columns["area_per_radius"].derived and not columns["mean_area"].derived
    assert '"derived": true' in config.schema_path.read_text()
    table = raw.manifest.drop("row", "label", "sha256", "id", "target")
    pre = make_preprocessor(config, columns)
    x = pre.fit_transform(table)
    assert pre.derived.columns == ("area_per_radius", "texture_growth")
    labels = raw.manifest["label"].to_list()
    classes = sorted(set(labels))
    y = [classes.index(v) for v in labels]
    spec = CandidateConfig(name="lr", kind="sklearn",
                           estimator="sklearn.linear_model.LogisticRegression",
                           params={"max_iter": 5000})  # fmt: skip
    model = build_model(spec, classes=classes, preprocessor=pre)
    model.fit(x, y, x, y, log=lambda _: None)
    expected = [str(p) for p in model.predict(table.head(20))]
    store = Store(config.store_path)
    ref = save_model(model, artifacts_dir=config.artifacts_dir)
    store.record_model(model_hash=ref.model_hash, name="lr", kind="sklearn", spec={},
                       data_version="d", split_version="s", artifact_path=ref.relative_path,
                       size_bytes=ref.size_bytes, fit_seconds=0.0, run_id=None)  # fmt: skip
    promote_model(ref.model_hash, config=config, store=store, reason="test")
    key = create_key(store, "app", routes=("predict",))
    # the project's file changes after training: the model keeps the source it learned with
    (tmp_path / "p" / "features.py").write_text("def add(frame):\n    raise RuntimeError('gone')\n")
    sent = table.drop("area_per_radius", "texture_growth").head(20).to_dicts()
    with ServerProcess(config.path) as server:
        status, body = server.request("POST", "/predict", {"rows": sent}, key=key)
        assert status == 200, body
        assert [p["label"] for p in body["predictions"]] == expected
        status, body = server.request(  # a client sending a derived column is refused
            "POST", "/predict", {"rows": [dict(sent[0], area_per_radius=1.0)]}, key=key
        )
        assert status == 422 and "area_per_radius" in str(body), body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise ZeroDivisionError('no radius')", "raised ZeroDivisionError: no radius"),
        ("return frame.head(3).select(pl.col('mean_area').alias('x'))", "3 rows for 569"),
        ("return frame['mean_area']", "returned Series; it must return a polars DataFrame"),
        ("return frame.select('mean_area')", "columns the table already has: ['mean_area']"),
    ],
)
def test_a_faulty_function_stops_raw_data_with_a_clear_error(tmp_path, body, message):
    from mllife.data.stage import read_raw

    config = _project(tmp_path / "p", f"import polars as pl\n\n\ndef add(frame):\n    {body}\n")
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_raw(config)
    assert not config.schema_path.exists()  # nothing written


def test_a_missing_module_or_function_is_a_config_error(tmp_path):
    from mllife import ConfigError
    from mllife.data.derived import derived_features

    config = _project(tmp_path / "p")
    (tmp_path / "p" / "features.py").unlink()
    with pytest.raises(ConfigError, match="no Python module 'features' in the project folder"):
        derived_features(config)
    (tmp_path / "p" / "features.py").write_text("def other(frame):\n    return frame\n")
    with pytest.raises(ConfigError, match="features has no function add"):
        derived_features(config).compute(pl.DataFrame({"a": [1]}))
