"""Sensors (off by default: turn them on in the UI, Automation tab)."""

import dagster as dg

from assets.graph.resources import MllifeProject
from mllife._errors import ConfigError
from mllife.data.stage import current_data_version
from mllife.monitoring.batch import dataset_drift_in_run


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


def every_minutes_cron(minutes: int) -> str:
    """A cron schedule for "every ``minutes`` minutes", aligned to the clock."""
    if minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *" if minutes > 1 else "* * * * *"
    if minutes % 60 == 0 and (24 * 60) % minutes == 0:
        hours = minutes // 60
        return f"0 */{hours} * * *" if hours > 1 else "0 * * * *"
    raise ConfigError(
        f"[monitoring] drift_check_minutes = {minutes} is not a whole fraction of an hour or"
        " a day; use one of 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, ... 1440"
    )


def build_monitoring_schedule(
    monitor_job, minutes: int, *, on: bool = False
) -> dg.ScheduleDefinition:
    """The one periodic drift check: the monitor job on a clock (on by default in the
    team profile, whose daemon runs it)."""
    return dg.ScheduleDefinition(
        name="monitoring_schedule",
        job=monitor_job,
        cron_schedule=every_minutes_cron(minutes),
        default_status=dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED,
        description="Runs the monitor job (ingest served traffic, measure drift; a drift check"
        " fails with WARN or ERROR severity) every [monitoring] drift_check_minutes. On by"
        " default in the team profile; locally, turn it on in the UI (Automation).",
    )


def build_retrain_on_drift_sensor(monitor_job, retrain_job) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[monitor_job],
        request_job=retrain_job,
        name="retrain_on_drift",
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="When a monitor run finds dataset drift on the current champion and"
        " [monitoring] retrain_on_drift is set, requests one retrain for that run (the run"
        " key is the monitor run's id).",
    )
    def retrain_on_drift(context: dg.RunStatusSensorContext, project: MllifeProject):
        run_id = context.dagster_run.run_id
        if not project.config.monitoring.retrain_on_drift:
            return dg.SkipReason("[monitoring] retrain_on_drift is off")
        if not dataset_drift_in_run(project.store, run_id):
            return dg.SkipReason(f"monitor run {run_id}: no dataset drift on the champion")
        return dg.RunRequest(
            run_key=f"retrain-after-drift-{run_id}",
            tags={"mllife/reason": f"dataset drift in monitor run {run_id}"},
        )

    return retrain_on_drift
