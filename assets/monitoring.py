"""Monitoring: drift of new data against the champion's training data."""

import dagster as dg

from assets._metadata import frame_md
from assets.resources import MllifeProject
from mllife.monitoring import BatchDrift, batch_drift
from mllife.split import SplitSet


@dg.asset(
    group_name="monitoring",
    kinds={"polars", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            "drift_thresholds",
            asset="drift_report",
            description="Per column: Benjamini-Hochberg-adjusted p < 0.05 and an effect of at"
            " least 0.1 (Wasserstein/std, Jensen-Shannon). WARN when columns drift, ERROR when"
            " the dataset does (30% of columns).",
        )
    ],
    description="Rows that arrived since the champion was deployed, compared with the"
    " training rows it learned from: KS, chi-squared, PSI, Wasserstein and Jensen-Shannon"
    " per feature (image brightness, contrast and size for images).",
)
def drift_report(project: MllifeProject, splits: SplitSet):
    result: BatchDrift = batch_drift(project.config, project.store, splits)
    report = result.report
    metadata = {
        "summary": result.reason,
        "reference_rows": result.n_reference,
        "current_rows": result.n_current,
    }
    if report is not None:
        frame = report.to_frame().select(
            "column", "kind", "statistic", "p_adjusted", "effect", "psi", "drifted"
        )
        metadata["columns"] = frame_md(frame)
    yield dg.Output(result, metadata=metadata)
    if report is None:
        yield dg.AssetCheckResult(
            check_name="drift_thresholds", passed=True, metadata={"summary": result.reason}
        )
        return
    severity = dg.AssetCheckSeverity.ERROR if report.dataset_drift else dg.AssetCheckSeverity.WARN
    yield dg.AssetCheckResult(
        check_name="drift_thresholds",
        passed=not report.drifted_columns,
        severity=severity,
        metadata={
            "summary": report.summary(),
            "drifted": report.drifted_columns,
            "share_drifted": report.share_drifted,
        },
    )
