"""Sensors (off by default: turn them on in the UI, Automation tab)."""

import time

import dagster as dg

from assets.resources import MllifeProject
from mllife.monitoring.batch import latest_dataset_drift
from mllife.storage.dvc import current_data_version


def build_new_data_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Starts the lifecycle when the content of the data changes. The run key"
        " is the data version (DVC's hash), so the same data never trains twice; the cursor"
        " remembers the last version seen.",
    )
    def new_data_sensor(context: dg.SensorEvaluationContext, project: MllifeProject):
        version = current_data_version(project.config)
        if version is None:
            return dg.SkipReason(f"no data at {project.config.data_path} yet")
        if version == context.cursor:
            return dg.SkipReason(f"data unchanged ({version})")
        context.update_cursor(version)
        return dg.RunRequest(run_key=version, tags={"mllife/data_version": version})

    return new_data_sensor


def build_drift_sensor(monitor_job, retrain_job, interval_minutes: int) -> dg.SensorDefinition:
    @dg.sensor(
        jobs=[monitor_job, retrain_job],
        minimum_interval_seconds=interval_minutes * 60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Periodic drift alarm: runs the monitor job (ingest served traffic,"
        " measure drift; a drift check fails with WARN or ERROR severity). With [monitoring]"
        " retrain_on_drift, dataset drift found by a monitor run also requests a retrain,"
        " once per drifted run (the cursor remembers it).",
    )
    def drift_sensor(context: dg.SensorEvaluationContext, project: MllifeProject):
        requests = []
        drifted = latest_dataset_drift(project.store)
        if (
            project.config.monitoring.retrain_on_drift
            and drifted is not None
            and drifted != context.cursor
        ):
            context.update_cursor(drifted)
            requests.append(
                dg.RunRequest(
                    job_name=retrain_job.name,
                    run_key=f"retrain-after-drift-{drifted}",
                    tags={"mllife/reason": f"dataset drift in monitor run {drifted}"},
                )
            )
        window = int(time.time() // (interval_minutes * 60))
        requests.append(dg.RunRequest(job_name=monitor_job.name, run_key=f"monitor-{window}"))
        return requests

    return drift_sensor
