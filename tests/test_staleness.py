"""How fast a model goes stale (#46, `[data] time`): a backtest on the project's own
history, in the report with a suggested age limit the freshness warning then uses."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from mllife._errors import DataError
from mllife.evaluation.staleness import staleness_backtest, time_in_days


def _history(n: int, *, drifting: bool, seed: int = 0) -> pl.DataFrame:
    """Rows over a year; with ``drifting`` the boundary between the classes moves."""
    rng = np.random.default_rng(seed)
    day = np.sort(rng.uniform(0, 360, n))
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    boundary = day / 120 if drifting else np.zeros(n)
    label = np.where(x + 0.3 * z > boundary, "yes", "no")
    return pl.DataFrame(
        {"day": [date(2025, 1, 1) + timedelta(days=float(d)) for d in day],
         "x": x, "z": z, "target": label}
    )  # fmt: skip


def _backtest(frame: pl.DataFrame):
    from sklearn.linear_model import LogisticRegression

    features = frame.select("x", "z").to_numpy()
    labels = frame["target"].to_numpy()

    def fit_predict(train, score):
        model = LogisticRegression().fit(features[train], labels[train])
        return model.predict(features[score])

    days = time_in_days(frame["day"], where="day")
    return staleness_backtest(days, labels, fit_predict, model="a logistic regression")


def test_a_drifting_history_gets_an_age_limit_and_a_stable_one_does_not():
    drifting = _backtest(_history(3000, drifting=True))
    assert drifting.suggested_days is not None and 0 < drifting.suggested_days < 200
    first, last = drifting.points[0], drifting.points[-1]
    assert first.accuracy > last.accuracy and last.high < first.low
    assert "retrain within" in drifting.describe()
    stable = _backtest(_history(3000, drifting=False))
    assert stable.suggested_days is None and "can be at least" in stable.describe()
    few = _backtest(_history(100, drifting=True))
    assert few.points == [] and "fewer than 200" in few.describe()


def test_times_that_cannot_be_used_are_clear_errors():
    days = pl.Series("day", [date(2025, 1, 1), None, date(2025, 1, 3)])
    with pytest.raises(DataError, match="1 row\\(s\\) have no time"):
        time_in_days(days, where="[data] time 'day'")
    future = pl.Series("day", [date(2025, 1, 1), date.today() + timedelta(days=30)])
    with pytest.raises(DataError, match="1 row\\(s\\) lie in the future"):
        time_in_days(future, where="[data] time 'day'")
    with pytest.raises(DataError, match="a date, a datetime or a number, not String"):
        time_in_days(pl.Series("day", ["monday"]), where="[data] time 'day'")


def test_an_image_project_dates_files_only(tmp_path):
    from mllife import ConfigError
    from mllife.config.project import load_config

    (tmp_path / "mllife.toml").write_text(
        '[data]\ntime = "taken"\n[[candidates]]\nname = "a"\nkind = "sklearn"\nestimator = "a.B"\n'
    )
    with pytest.raises(ConfigError, match='data.time for images is "file_date"'):
        load_config(tmp_path / "mllife.toml")


def test_a_run_measures_staleness_and_the_freshness_warning_uses_it(tmp_path):
    """A first run of a table with a time column (the behaviour is the run's own asset
    and report section; no shared run has a time column)."""
    from assets.runtime.run import run_lifecycle
    from mllife.config.project import load_config
    from mllife.monitoring.batch import staleness
    from mllife.storage.store import Store

    history = _history(3000, drifting=True)
    regions = np.random.default_rng(5).choice(["north", "south"], history.height)
    history.with_columns(pl.Series("region", regions)).write_parquet(tmp_path / "history.parquet")
    (tmp_path / "mllife.toml").write_text(
        '[data]\nkind = "table"\npath = "history.parquet"\ntarget = "target"\ntime = "day"\n'
        # a personal group: measured per value in the report, never a model input
        'pii = ["region"]\nmeasure_only = ["region"]\n[fairness]\ngroups = ["region"]\n'
        '[[candidates]]\nname = "logreg"\nkind = "sklearn"\n'
        'estimator = "sklearn.linear_model.LogisticRegression"\n'
        '[training]\nbaselines = ["majority"]\n'
    )
    outcome = run_lifecycle(tmp_path / "mllife.toml", log_level="WARNING")
    assert outcome.success, "\n".join(outcome.lines)
    config = load_config(tmp_path / "mllife.toml")
    html = (config.reports_dir / f"status-{outcome.run_id}.html").read_text()
    assert "How fast a model goes stale" in html and "retrain within" in html
    store = Store(config.store_path)
    measured = store.query(
        "SELECT count FROM data_findings WHERE finding = 'staleness_limit_days'"
    )["count"][0]
    champion = store.champion()
    later = champion.created_at + timedelta(days=measured + 1)
    assert not staleness(config, store, now=later).passed
    assert "measured by the staleness backtest" in staleness(config, store, now=later).reason
    assert staleness(config, store, now=champion.created_at + timedelta(days=1)).passed
    # the time column and the measured-only group are never model inputs
    contract = config.schema_path.read_text()
    assert '"day"' not in contract and '"region"' not in contract and '"x"' in contract
    # the group is measured, and shown only by its keyed hash
    assert "By region" in html and "pii:" in html and "north" not in html


def test_photos_dated_by_exif_or_file_time_are_backtested_too(tmp_path):
    """Images: `[data] time = "file_date"`: the EXIF date taken, else the file's time."""
    import os

    from PIL import Image

    from mllife.config.project import load_config
    from mllife.data.stage import clean, make_splits, read_raw
    from mllife.evaluation.staleness import image_dates, project_backtest
    from mllife.storage.store import Store

    rng = np.random.default_rng(3)
    for i in range(900):
        day = float(rng.uniform(0, 360))
        level = float(rng.uniform(0, 1))
        label = "bright" if level > 0.3 + 0.4 * day / 360 else "dark"  # the bar moves up
        folder = tmp_path / "data" / "photos" / label
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(rng.normal(level * 255, 20, (8, 8)), 0, 255).astype(np.uint8)
        when = datetime(2025, 1, 1) + timedelta(days=day)
        if i % 3:  # most carry the date they were taken
            exif = Image.Exif()
            exif[306] = when.strftime("%Y:%m:%d %H:%M:%S")
            Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", exif=exif.tobytes())
        else:  # the rest only their file's time
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")
            os.utime(folder / f"{i:04d}.png", (when.timestamp(), when.timestamp()))
    (tmp_path / "mllife.toml").write_text(
        '[data]\npath = "data/photos"\ntime = "file_date"\n'
        '[[candidates]]\nname = "cnn"\nkind = "torch"\narchitecture = "small_cnn"\n'
    )
    config = load_config(tmp_path / "mllife.toml")
    splits, _ = make_splits(config, clean(config, read_raw(config)), store=Store(tmp_path / "s.db"))
    dated = image_dates(splits.rows["path"].to_list()[:6], root=config.root)
    assert dated.min() >= datetime(2025, 1, 1) and dated.max() < datetime(2026, 1, 1)
    found = project_backtest(config, splits, config.candidate("cnn"))
    assert "standing in for cnn (torch)" in found.model
    assert found.suggested_days is not None, found.describe()
