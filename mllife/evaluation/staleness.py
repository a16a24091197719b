"""How fast a model goes stale, measured on the project's own history (ML Test Score,
Model 4) instead of a fixed 30-day guess.

Where rows carry a time (``[data] time``), the backtest trains on the rows up to a cut
and scores the rows that came after it, in windows of equal width: window k holds what
a model k windows old would have been asked. Several cuts (at 40-70% of the time span)
pool their windows, so each age has rows from more than one period. Only train and
validation rows take part: the sealed test set stays sealed. The first age whose
accuracy interval lies wholly below the youngest age's interval is where quality fell
beyond chance; its start is the suggested age limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import polars as pl

from mllife._errors import DataError

__all__ = [
    "AgePoint",
    "StalenessBacktest",
    "image_dates",
    "project_backtest",
    "staleness_backtest",
    "time_in_days",
]

CUTS = (0.4, 0.5, 0.6, 0.7)  # where in the time span models are cut
WINDOWS = 6
MIN_ROWS = 200


@dataclass(frozen=True)
class AgePoint:
    #: the window's start and end, in days since the cut
    start_days: float
    end_days: float
    n: int
    accuracy: float
    low: float
    high: float


@dataclass(frozen=True)
class StalenessBacktest:
    points: list[AgePoint] = field(default_factory=list)
    #: what was trained at each cut
    model: str = ""
    #: the age (days) where quality fell beyond chance; None: no fall measured
    suggested_days: float | None = None
    #: how far the backtest reaches (days): without a fall, the limit is at least this
    horizon_days: float = 0.0
    reason: str | None = None

    def describe(self) -> str:
        if self.reason:
            return self.reason
        if self.suggested_days is None:
            return (
                f"no fall in accuracy beyond chance within {self.horizon_days:.0f} days of a"
                f" model's training ({self.model}); the age limit can be at least that"
            )
        first = self.points[0]
        return (
            f"accuracy falls beyond chance after {self.suggested_days:.0f} days (from"
            f" {first.accuracy:.3f} in the first {first.end_days:.0f} days; {self.model}):"
            f" retrain within {self.suggested_days:.0f} days"
        )


def time_in_days(times: pl.Series, *, where: str) -> np.ndarray:
    """Times (dates, datetimes, or numbers of days) as days, checked: no missing value,
    none in the future."""
    if times.null_count():
        raise DataError(
            f"{where}: {times.null_count()} row(s) have no time; give every row one, or"
            " drop those rows"
        )
    if times.dtype == pl.Date:
        days = times.cast(pl.Int64).to_numpy().astype(np.float64)
        now = (datetime.now(UTC).date() - datetime(1970, 1, 1).date()).days
    elif isinstance(times.dtype, pl.Datetime):
        days = times.dt.epoch("ms").to_numpy() / 86_400_000
        now = datetime.now(UTC).timestamp() / 86400
    elif times.dtype.is_numeric():
        return times.cast(pl.Float64).to_numpy()  # days on the data's own clock
    else:
        raise DataError(
            f"{where}: a time must be a date, a datetime or a number, not {times.dtype}"
        )
    future = int((days > now + 1).sum())
    if future:
        raise DataError(
            f"{where}: {future} row(s) lie in the future (after today); fix their times"
        )
    return days


def staleness_backtest(
    days: np.ndarray,
    labels,
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    model: str,
    confidence: float = 0.95,
) -> StalenessBacktest:
    """``fit_predict(train_index, score_index)`` trains on the rows of ``train_index``
    and returns its predicted labels for ``score_index``."""
    from mllife.metrics._intervals import wilson_interval

    labels = np.asarray([str(v) for v in labels], dtype=object)
    n = len(days)
    if n < MIN_ROWS:
        return StalenessBacktest(model=model, reason=f"staleness not measured: {n} rows,"
                                 f" fewer than {MIN_ROWS}")  # fmt: skip
    span = np.quantile(days, CUTS)
    width = (days.max() - span[0]) / WINDOWS
    if width <= 0:
        return StalenessBacktest(model=model, reason="staleness not measured: the rows"
                                 " share one time")  # fmt: skip
    right = np.zeros(WINDOWS)
    total = np.zeros(WINDOWS)
    for cut in span:
        train = np.flatnonzero(days <= cut)
        later = np.flatnonzero(days > cut)
        if len(np.unique(labels[train])) < 2 or not len(later):
            continue
        predicted = np.asarray(fit_predict(train, later), dtype=object)
        window = np.minimum(((days[later] - cut) // width).astype(int), WINDOWS - 1)
        hits = predicted == labels[later]
        np.add.at(right, window, hits)
        np.add.at(total, window, 1)
    points = []
    for k in range(WINDOWS):
        if total[k]:
            low, high = wilson_interval(right[k], total[k], confidence)
            points.append(AgePoint(float(k * width), float((k + 1) * width), int(total[k]),
                                   float(right[k] / total[k]), low, high))  # fmt: skip
    if len(points) < 2:
        return StalenessBacktest(points, model, reason="staleness not measured: too few"
                                 " rows after the cuts")  # fmt: skip
    young = points[0]
    fallen = next((p for p in points[1:] if p.high < young.low), None)
    return StalenessBacktest(
        points, model, None if fallen is None else fallen.start_days, points[-1].end_days
    )


def image_dates(paths: list[str], *, root) -> pl.Series:
    """Each image's date: when it was taken (EXIF DateTimeOriginal, else DateTime), else
    the file's modification time."""
    import os
    from pathlib import Path

    from PIL import Image

    taken = []
    for path in paths:
        file = Path(root) / path
        stamp = None
        with Image.open(file) as image:  # the header only: no pixels are decoded
            exif = image.getexif()
            text = exif.get_ifd(0x8769).get(36867) or exif.get(306)
        if text:
            try:
                stamp = datetime.strptime(str(text).strip(), "%Y:%m:%d %H:%M:%S")
            except ValueError:
                stamp = None  # a malformed EXIF date: the file's date instead
        if stamp is None:
            stamp = datetime.fromtimestamp(os.stat(file).st_mtime, UTC).replace(tzinfo=None)
        taken.append(stamp)
    return pl.Series("time", taken, dtype=pl.Datetime("us"))


def project_backtest(config, splits, spec) -> StalenessBacktest:
    """:func:`staleness_backtest` over the train and validation rows (``[data] time``),
    retraining ``spec`` (the challenger's candidate) when it is a scikit-learn estimator
    of table columns, else a logistic regression standing in for it (on the same table
    preprocessing, or on images' 16x16 grayscale thumbnails)."""
    from mllife.models.sklearn_model import fit_estimator

    rows = splits.rows.filter(pl.col("split") != "test")  # the sealed set stays sealed
    labels = rows["label"].cast(pl.String).to_numpy()
    if config.data.kind == "images":
        from mllife.data.near_duplicates import project_image_fingerprints

        times = image_dates(rows["path"].to_list(), root=config.root)
        days = time_in_days(times, where="[data] time 'file_date'")
        features = project_image_fingerprints(config, rows).thumbnails / 255.0
        prepare = None
    else:
        from mllife.preprocess.inputs import make_preprocessor

        days = time_in_days(rows[config.data.time], where=f"[data] time {config.data.time!r}")
        features = rows.select(list(splits.columns))
        prepare = lambda: make_preprocessor(config, splits.columns)  # noqa: E731
    if spec.kind == "sklearn" and prepare is not None:
        path, params, model = spec.estimator, dict(spec.params), f"{spec.name} retrained"
    else:
        path, params = "sklearn.linear_model.LogisticRegression", {"max_iter": 1000}
        model = f"a logistic regression standing in for {spec.name} ({spec.kind})"

    def fit_predict(train, score):
        if prepare is None:
            x, later = features[train], features[score]
        else:
            pre = prepare()
            x = pre.fit_transform(features[train]).numpy()
            later = pre.transform(features[score]).numpy()
        estimator = fit_estimator(path, params, x, labels[train], name=spec.name,
                                  log=lambda _: None)  # fmt: skip
        return estimator.predict(later)

    return staleness_backtest(days, labels, fit_predict, model=model)
