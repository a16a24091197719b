"""Monitoring: served traffic into the store, drift against the training data,
staleness of the champion."""

import dagster as dg

from assets.graph import pools
from assets.graph._metadata import frame_table
from assets.graph.resources import MllifeProject
from mllife.data.split import SplitSet
from mllife.monitoring.batch import BatchDrift, batch_drift, record_drift, served_drift, staleness
from mllife.monitoring.traffic import IngestResult, ingest_segments, served_quality, traffic_summary


@dg.asset(
    pool=pools.STORE,
    group_name="monitoring",
    kinds={"parquet", "duckdb"},
    description="Ingests the model server's Parquet segments (.mllife/predictions/) into the"
    " store's predictions and feedback tables, each segment exactly once; shows traffic,"
    " latency, and accuracy on served data where feedback labels exist.",
)
def served_predictions(project: MllifeProject) -> dg.Output[IngestResult]:
    result = ingest_segments(project.config, project.store)
    metadata = {
        "new_predictions": result.predictions,
        "new_feedback": result.feedback,
        "segments": result.segments,
    }
    traffic = traffic_summary(project.store)
    if traffic.height:
        metadata["traffic"] = frame_table(traffic.drop("first_seen"))
    quality = served_quality(project.store)
    if quality.height:
        metadata["served_accuracy"] = frame_table(quality)
    return dg.Output(result, metadata=metadata)


def _measured(context: dg.AssetExecutionContext, scope: str, measure) -> BatchDrift:
    """One scope's drift. Monitoring must never stop a deployment (the champion step
    waits for this asset): a failure becomes a *failed* check naming the error, with
    the traceback in the run's log -- not a step failure that skips the champion."""
    try:
        return measure()
    except Exception as exc:
        context.log.exception(f"drift of {scope} could not be measured")
        return BatchDrift(None, 0, 0, f"{FAILED_PREFIX}{type(exc).__name__}: {exc}", scope)


FAILED_PREFIX = "monitoring failed: "


def _check(name: str, result: BatchDrift) -> dg.AssetCheckResult:
    report = result.report
    if report is None:
        failed = result.reason.startswith(FAILED_PREFIX)
        return dg.AssetCheckResult(
            check_name=name,
            passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR if failed else dg.AssetCheckSeverity.WARN,
            metadata={"summary": result.reason},
        )
    severity = dg.AssetCheckSeverity.ERROR if report.dataset_drift else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        check_name=name,
        passed=not report.drifted_columns,
        severity=severity,
        metadata={
            "summary": result.reason,
            "drifted": report.drifted_columns,
            "share_drifted": report.share_drifted,
            "dataset_drift": report.dataset_drift,
        },
    )


_THRESHOLDS = (
    "Per column: Benjamini-Hochberg-adjusted p < 0.05 and an effect of at least 0.1"
    " (Wasserstein/std, Jensen-Shannon). WARN when columns drift, ERROR when the dataset"
    " does (30% of columns)."
)


@dg.asset(
    pool=pools.STORE,
    group_name="monitoring",
    kinds={"polars", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec("drift_thresholds", asset="drift_report", description=_THRESHOLDS),
        dg.AssetCheckSpec(
            "served_drift_thresholds",
            asset="drift_report",
            description="Served inputs and predicted classes since the deployment vs the"
            " champion's training rows. " + _THRESHOLDS,
        ),
        dg.AssetCheckSpec(
            "champion_freshness",
            asset="drift_report",
            description="The champion and its training data are younger than"
            " [monitoring] max_champion_age_days and max_data_age_days.",
        ),
    ],
    description="New data rows and served inputs since the champion was deployed, each"
    " compared with the training rows it learned from: KS, chi-squared, PSI, Wasserstein and"
    " Jensen-Shannon per feature (image brightness, contrast and size for images), plus"
    " prediction drift on served traffic. Results go to the store's drift_results table.",
)
def drift_report(
    context: dg.AssetExecutionContext,
    project: MllifeProject,
    splits: SplitSet,
    served_predictions: IngestResult,
):
    config, store = project.config, project.store
    new_data = _measured(context, "new_data", lambda: batch_drift(config, store, splits))
    served = _measured(context, "served", lambda: served_drift(config, store, splits))
    for result in (new_data, served):
        record_drift(store, result, run_id=context.run.run_id)
    metadata = {"new_data": new_data.reason, "served": served.reason}
    for result in (new_data, served):
        if result.report is not None:
            frame = result.report.to_frame().select(
                "column", "kind", "statistic", "p_adjusted", "effect", "psi", "drifted"
            )
            metadata[f"{result.scope}_columns"] = frame_table(frame)
    yield dg.Output({"new_data": new_data, "served": served}, metadata=metadata)
    yield _check("drift_thresholds", new_data)
    yield _check("served_drift_thresholds", served)
    age = staleness(config, store)
    yield dg.AssetCheckResult(
        check_name="champion_freshness",
        passed=age.passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "summary": age.reason,
            "champion_age_days": age.champion_age_days,
            "data_age_days": age.data_age_days,
        },
    )
