"""Monitoring: drift of new data and of served inputs against the champion's training
data, recorded in the store, and the champion's staleness."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from mllife._faults import fail_point
from mllife.config.project import ProjectConfig
from mllife.data.split import SplitSet, split_namespace
from mllife.models.registry import champion_ref, load_model
from mllife.monitoring.drift import DriftReport, drift
from mllife.monitoring.images import embedding_columns, image_statistics, model_embeddings
from mllife.monitoring.traffic import served_features
from mllife.preprocess.inputs import load_inputs, model_inputs, pixel_set
from mllife.storage.store import Store

__all__ = [
    "BatchDrift",
    "Staleness",
    "batch_drift",
    "dataset_drift_in_run",
    "record_drift",
    "served_drift",
    "staleness",
]


@dataclass(frozen=True)
class BatchDrift:
    report: DriftReport | None
    n_reference: int
    n_current: int
    reason: str
    scope: str = "new_data"  # or "served"

    @property
    def before_any_champion(self) -> bool:
        """Nothing was compared because no champion was deployed when it ran."""
        return self.report is None and self.reason.startswith(NO_CHAMPION)


#: the reason of a drift result taken while no champion was deployed
NO_CHAMPION = "no champion deployed yet"


#: fewer rows than this on either side and no column is compared (drift()'s own floor)
MIN_ROWS = 30


def _not_enough(n_reference: int, n_current: int, what: str, scope: str) -> BatchDrift:
    return BatchDrift(
        None,
        n_reference,
        n_current,
        f"not enough data (n < {MIN_ROWS}): {n_current} {what} since the deployment;"
        " drift is measured once there are more",
        scope,
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _features(
    config: ProjectConfig, splits: SplitSet, rows: pl.DataFrame, preprocessor=None
) -> pl.DataFrame:
    """What drift compares: a table's columns, or per-image statistics of the pixels
    ``preprocessor`` gives (the champion's, for served inputs: the pixels it saw)."""
    if config.data.kind == "images":
        return image_statistics(load_inputs(rows, root=config.root), preprocessor=preprocessor)
    return rows.select(list(splits.columns))


def _rows_with_assignment_time(config: ProjectConfig, store: Store, splits: SplitSet):
    assigned = store.query(
        "SELECT key, assigned_at FROM split_assignments WHERE namespace = ?",
        [split_namespace(config.split)],
    ).with_columns(pl.col("key").cast(pl.String))
    return splits.rows.with_columns(pl.col(splits.key).cast(pl.String).alias("_key")).join(
        assigned, left_on="_key", right_on="key", how="left"
    )


def _before_and_after(config, store, splits, champion) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The training rows the champion learned from, and the rows that arrived after it."""
    rows = _rows_with_assignment_time(config, store, splits)
    seen = pl.col("assigned_at") <= champion.created_at
    return rows.filter(seen & (pl.col("split") == "train")), rows.filter(~seen)


def batch_drift(config: ProjectConfig, store: Store, splits: SplitSet) -> BatchDrift:
    """Rows that arrived after the champion's deployment vs the rows it trained on."""
    champion = store.champion()
    if champion is None:
        return BatchDrift(None, 0, 0, f"{NO_CHAMPION}: nothing to compare with")
    reference, current = _before_and_after(config, store, splits, champion)
    if current.height == 0:
        return BatchDrift(None, reference.height, 0, "no new data since the champion was deployed")
    if current.height < MIN_ROWS:
        return _not_enough(reference.height, current.height, "new data rows", "new_data")
    ref_frame, cur_frame = _features(config, splits, reference), _features(config, splits, current)
    extra = ()
    if config.data.kind == "images":
        ref_frame, cur_frame = _with_embeddings(
            config, store, reference, current, ref_frame, cur_frame
        )
    elif text_columns(splits):
        model = load_model(champion_ref(store), artifacts_dir=config.artifacts_dir, store=store)
        ref_frame, cur_frame, extra = _text_drift(splits, model, ref_frame, cur_frame)
    report = drift(ref_frame, cur_frame, extra=extra)
    return BatchDrift(
        report,
        reference.height,
        current.height,
        f"new data: {current.height} rows arrived since the champion's deployment;"
        f" {report.summary()}",
    )


def _with_embeddings(config, store, reference, current, ref_frame, cur_frame):
    """The image statistics plus the champion's embeddings of both sides (projected on
    their principal components), when the champion has embeddings."""
    model = load_model(champion_ref(store), artifacts_dir=config.artifacts_dir, store=store)
    pre = model.preprocessor
    ref_vectors = model_embeddings(model, pixel_set(reference, config=config, preprocessor=pre))
    if ref_vectors is None:
        return ref_frame, cur_frame
    cur_vectors = model_embeddings(model, pixel_set(current, config=config, preprocessor=pre))
    ref_emb, cur_emb = embedding_columns(ref_vectors, cur_vectors)
    return ref_frame.hstack(ref_emb), cur_frame.hstack(cur_emb)


def text_columns(splits: SplitSet) -> list[str]:
    return [name for name, spec in splits.columns.items() if spec.dtype == "text"]


def _text_drift(splits: SplitSet, model, reference: pl.DataFrame, current: pl.DataFrame):
    """Free-text columns as their length and unknown-word share, plus the MMD test of
    their sentence vectors when the champion has an encoder (``mllife.monitoring.text``)."""
    from mllife.monitoring.text import embedding_mmd, text_drift_columns, text_vectors

    texts = [n for n in text_columns(splits) if n in reference.columns and n in current.columns]
    if not texts:
        return reference, current, ()
    extra = []
    for name in texts:
        a, b = text_vectors(model, reference, name), text_vectors(model, current, name)
        if a is not None and min(len(a), len(b)) >= MIN_ROWS:
            extra.append((f"{name}:meaning", "embedding", embedding_mmd(a, b), len(a), len(b)))
    return (*text_drift_columns(reference, current, texts), tuple(extra))


def served_drift(config: ProjectConfig, store: Store, splits: SplitSet) -> BatchDrift:
    """What the champion was asked since its deployment (ingested from the server) vs
    its training rows: every feature (image statistics for images), plus prediction
    drift: the served predicted classes against the champion's predictions on the
    training rows."""
    fail_point("monitoring:served")
    champion = store.champion()
    if champion is None:
        return BatchDrift(None, 0, 0, NO_CHAMPION, "served")
    current = served_features(store, since=champion.created_at, model_hash=champion.model_hash)
    if current.height == 0:
        return BatchDrift(None, 0, 0, "no served predictions since the deployment", "served")
    reference_rows, _ = _before_and_after(config, store, splits, champion)
    if current.height < MIN_ROWS:
        return _not_enough(reference_rows.height, current.height, "served predictions", "served")
    model = load_model(champion_ref(store), artifacts_dir=config.artifacts_dir, store=store)
    inputs = model_inputs(reference_rows, config=config, columns=splits.columns)
    reference = _features(config, splits, reference_rows, model.preprocessor).with_columns(
        pl.Series("prediction", [str(p) for p in model.predict(inputs)])
    )
    # pii columns were logged hashed or not at all: nothing to compare them with
    private = set(config.data.pii)
    shared = [c for c in reference.columns if c in current.columns and c not in private]
    reference, current, extra = _text_drift(
        splits, model, reference.select(shared), current.select(shared)
    )
    report = drift(reference, current, extra=extra)
    said = f"served: {current.height} predictions since the deployment; {report.summary()}"
    if private:
        said += f"; not compared (pii, not logged in clear): {', '.join(sorted(private))}"
    return BatchDrift(report, reference.height, current.height, said, "served")


def record_drift(store: Store, result: BatchDrift, *, run_id: str | None) -> int:
    """Store each column's result for this run and scope (one row saying why when no
    column was compared); returns rows written."""
    report = result.report
    champion = store.champion()
    model_hash = champion.model_hash if champion else None
    now = _now()
    if report is None or not report.columns:
        # Nothing was compared (no champion, no or too few new rows, or a failure): one
        # row says why, so the history shows that monitoring ran and what it found.
        reason = result.reason if report is None else f"no column compared: {result.reason}"
        rows = [
            [run_id, result.scope, model_hash, None, None, reason, None, None, None, None,
             False, False, result.n_reference, result.n_current, now]
        ]  # fmt: skip
    else:
        rows = [
            [run_id, result.scope, model_hash, c.column, c.kind, c.test, c.statistic,
             c.p_adjusted, c.effect, c.psi, c.drifted, report.dataset_drift, c.n_reference,
             c.n_current, now]
            for c in report.columns
        ]  # fmt: skip
    with store.writing() as conn:
        conn.executemany(
            "INSERT INTO drift_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def dataset_drift_in_run(store: Store, run_id: str) -> bool:
    """Whether monitoring run ``run_id`` found dataset drift on the current champion."""
    champion = store.champion()
    if champion is None or not store.path.exists():
        return False
    rows = store.query(
        "SELECT 1 FROM drift_results WHERE dataset_drift AND model_hash = ? AND run_id = ? LIMIT 1",
        [champion.model_hash, run_id],
    )
    return rows.height > 0


#: what to do about a champion past its age limits
STALE_ADVICE = (
    "add newer labelled data and run again (`mllife data add`), or raise [monitoring]"
    " max_champion_age_days / max_data_age_days"
)


@dataclass(frozen=True)
class Staleness:
    champion_age_days: float | None
    data_age_days: float | None
    passed: bool
    reason: str


def staleness(config: ProjectConfig, store: Store, *, now: datetime | None = None) -> Staleness:
    """How old the champion and its training data are, against [monitoring] limits."""
    now = now or _now()
    champion = store.champion()
    if champion is None:
        return Staleness(None, None, True, NO_CHAMPION)
    limits = config.monitoring
    champion_age = (now - champion.created_at).total_seconds() / 86400
    data = store.query(
        "SELECT created_at FROM datasets WHERE data_version = ?", [champion.data_version]
    )
    data_age = (now - data["created_at"][0]).total_seconds() / 86400 if data.height else None
    limit, source = limits.max_champion_age_days, ""
    if "max_champion_age_days" not in limits.model_fields_set:  # not set: measured, if it was
        measured = store.query(
            "SELECT count FROM data_findings WHERE finding = 'staleness_limit_days'"
            " AND count IS NOT NULL ORDER BY created_at DESC LIMIT 1"
        )
        if measured.height:
            limit, source = float(measured["count"][0]), ", measured by the staleness backtest"
    problems = []
    if champion_age > limit:
        problems.append(
            f"the champion was deployed {champion_age:.1f} days ago (limit {limit:g}{source})"
        )
    if data_age is not None and data_age > limits.max_data_age_days:
        problems.append(
            f"its training data is {data_age:.1f} days old (limit {limits.max_data_age_days:g})"
        )
    data_text = "unknown" if data_age is None else f"{data_age:.1f} days"
    reason = "; ".join(problems) or (
        f"champion deployed {champion_age:.1f} days ago, training data {data_text} old"
    )
    return Staleness(champion_age, data_age, not problems, reason)
