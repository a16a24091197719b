"""Personal columns (#45, `[data] pii`): the model may use them, but served predictions
log them hashed (or not at all), the store and the reports never hold them in clear."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from mllife import ConfigError
from mllife.config.project import load_config
from mllife.data.pii import pii_mask
from mllife.monitoring.traffic import ingest_segments
from mllife.preprocess.column_batch import ColumnBatch
from mllife.serve._log import PredictionLog
from mllife.serve.keys import create_key
from tests.serving import ServerProcess, table_project

PRIVATE = ("mean_radius", "mean_texture")


def _with_pii(setup: dict, mode: str = "hash"):
    path = setup["config"].path
    text = path.read_text().replace(
        'id = "id"\n', f'id = "id"\npii = {json.dumps(list(PRIVATE))}\npii_logging = "{mode}"\n'
    )
    path.write_text(text)
    return load_config(path)


def test_served_pii_is_logged_and_stored_hashed_and_never_becomes_a_pattern(tmp_path):
    from mllife._errors import ReviewError
    from mllife.cli._review import _desk

    setup = table_project(tmp_path / "p", serving="\n[serving.log]\nflush_seconds = 0.2\n")
    config = _with_pii(setup)
    store = setup["store"]
    key = create_key(store, "app", routes=("predict",))
    rows = setup["rows"][:4] + setup["rows"][:1]  # the first row twice
    with ServerProcess(config.path) as server:
        status, body = server.request("POST", "/predict", {"rows": rows}, key=key)
        assert status == 200, body
        deadline = time.monotonic() + 20
        while not list(config.predictions_dir.glob("pred-*.parquet")):
            assert time.monotonic() < deadline, "the log never flushed"
            time.sleep(0.1)
    segment = pl.read_parquet(next(config.predictions_dir.glob("pred-*.parquet")))
    logged = segment["features"].struct.unnest()
    for column in PRIVATE:
        assert logged[column].str.starts_with("pii:").all(), logged[column]
        assert logged[column][0] == logged[column][4] != logged[column][1]  # equal stay equal
    assert logged["mean_area"].to_list()[:4] == [r["mean_area"] for r in rows[:4]]  # the rest
    ingest_segments(config, store)
    stored = [json.loads(f) for f in store.query("SELECT features FROM predictions")["features"]]
    assert len(stored) == 5
    for row in stored:
        assert all(row[c].startswith("pii:") for c in PRIVATE), row
    assert not {str(r[c]) for r in rows for c in PRIVATE} & {
        str(s[c]) for s in stored for c in PRIVATE
    }
    desk = _desk(config)  # a logged row is not the row sent: no pattern can be made of it
    item = desk.items([segment["request_id"][0] + "-1"])
    with pytest.raises(ReviewError, match="pii columns .*mean_radius.* cannot become a pattern"):
        desk.add_to_problem(item, problem="doubts", labels={}, kind="positive", reviewer="t")


def test_drop_mode_leaves_pii_out_of_the_log(tmp_path):
    setup = table_project(tmp_path / "p")
    config = _with_pii(setup, "drop")
    mask = pii_mask(config)
    assert mask is not None and mask.mode == "drop"
    dtypes = {"mean_radius": "float", "mean_area": "float", "note": "string"}
    batch = ColumnBatch.from_rows(
        [{"mean_radius": 14.2, "mean_area": 600.0, "note": "a"}],
        dtypes,
        number_names=("mean_area", "mean_radius"),
    )
    log = PredictionLog(tmp_path / "log", mask=mask, flush_rows=1000, flush_seconds=60)
    log.append(
        ("r" * 32, datetime.now(UTC).replace(tzinfo=None), "k", "h", "m", "champion", True,
         1.0, batch, None, np.array([0]), np.array([0.9]), ("a", "b")),
    )  # fmt: skip
    log.flush()
    log.close()
    segment = pl.read_parquet(next((tmp_path / "log").glob("pred-*.parquet")))
    assert [f.name for f in segment["features"].dtype.fields] == ["mean_area", "note"]


def test_pii_values_stay_out_of_report_galleries_and_contract_examples(tmp_path):
    from mllife.data.stage import raw_contract, read_raw
    from mllife.reporting.gallery import gallery_section

    rows = pl.DataFrame(
        {"row": [0, 1], "label": ["a", "b"], "mean_radius": [11.5, 22.25], "x": [1.0, 2.0]}
    )
    section = gallery_section(
        rows, ("b", "b"), (0.9, 0.6), root=tmp_path, kind="table",
        features=["mean_radius", "x"], hidden=frozenset({"mean_radius"}),
    )  # fmt: skip
    captions = [" ".join(t.lines) for b in section.blocks for t in getattr(b, "tiles", ())]
    assert captions and all("mean_radius=(pii, hidden)" in c for c in captions)
    assert not any("11.5" in c for c in captions) and any("x=1.0" in c for c in captions)
    setup = table_project(tmp_path / "p")
    config = _with_pii(setup)
    table = pl.read_parquet(config.data_path)
    radius = pl.when(pl.col("id") == table["id"][0]).then(-1.0).otherwise(pl.col("mean_radius"))
    table.with_columns(radius.alias("mean_radius")).write_parquet(config.data_path)
    result = raw_contract(config, read_raw(config))  # a negative radius: out of range
    assert not result.passed
    shown = [e for e in result.examples if e["column"] == "mean_radius"]
    assert shown and all(e["value"] == "(pii, hidden)" for e in shown), result.examples


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('pii = ["target"]', "data.pii names the target column"),
        ('pii = ["a"]\nforbidden = ["a"]', "both forbidden and pii"),
    ],
)
def test_pii_settings_that_cannot_work_are_config_errors(tmp_path, text, message):
    path = tmp_path / "mllife.toml"
    path.write_text(f'[data]\nkind = "table"\npath = "t.parquet"\n{text}\n')
    with pytest.raises(ConfigError, match=message):
        load_config(path)
