"""Sensors (off by default: turn them on in the UI, Automation tab)."""

import dagster as dg

from assets.resources import MllifeProject
from mllife.versioning import current_data_version


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
