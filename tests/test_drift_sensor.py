"""Periodic drift checks, one mechanism: the monitor job on a schedule, and a run-status
sensor that requests one retrain for each successful monitor run that found dataset drift
on the current champion (only with ``[monitoring] retrain_on_drift``)."""

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets.definitions import build_definitions
from assets.graph.resources import MllifeProject
from assets.graph.sensors import every_minutes_cron
from mllife._errors import ConfigError
from mllife.config.project import load_config
from mllife.monitoring.batch import BatchDrift, record_drift
from mllife.monitoring.drift import drift
from mllife.storage.store import Store
from tests.conftest import make_project


def _frame(shift: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"x": rng.normal(shift, 1.0, 4000), "y": rng.normal(0.0, 1.0, 4000)})


def record_monitor_run(store: Store, run_id: str, *, shift: float) -> bool:
    report = drift(_frame(0.0, 1), _frame(shift, 2))
    record_drift(store, BatchDrift(report, 4000, 4000, report.summary()), run_id=run_id)
    return report.dataset_drift


def deploy(store: Store, model_hash: str) -> None:
    current = store.champion()
    store.record_deployment(
        action="promote", model_hash=model_hash, name="m", data_version="d", reason="test",
        decision={}, run_id=None, expected_previous=current.model_hash if current else None,
    )  # fmt: skip


@dg.op
def _noop() -> None:
    return None


@dg.job(name="monitor")
def _monitor_stand_in():
    _noop()


def finished_monitor_run(instance) -> tuple[dg.DagsterRun, dg.DagsterEvent]:
    """A real successful run named 'monitor' (what the sensor is told about)."""
    result = _monitor_stand_in.execute_in_process(instance=instance)
    return result.dagster_run, result.get_run_success_event()


def test_the_monitor_job_runs_on_one_schedule(tmp_path, digits_folder, monkeypatch):
    config_path = make_project(tmp_path / "p", digits_folder, extra="[monitoring]\n"
                               "drift_check_minutes = 15\n")  # fmt: skip
    defs = build_definitions(config_path)
    schedule = defs.resolve_schedule_def("monitoring_schedule")
    assert schedule.cron_schedule == "*/15 * * * *" and schedule.job_name == "monitor"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert [s.name for s in defs.schedules] == ["monitoring_schedule"]
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {"new_data_sensor", "retrain_on_drift", "alerts"}
    # alerts: on once [alerts] names a channel, off without one
    assert sensors["alerts"].default_status == dg.DefaultSensorStatus.STOPPED
    # the team profile's daemon measures drift without being asked
    monkeypatch.setenv("MLLIFE_PROFILE", "team")
    on = build_definitions(config_path).resolve_schedule_def("monitoring_schedule")
    assert on.default_status == dg.DefaultScheduleStatus.RUNNING
    assert every_minutes_cron(60) == "0 * * * *" and every_minutes_cron(360) == "0 */6 * * *"
    with pytest.raises(ConfigError, match="drift_check_minutes = 7 "):
        every_minutes_cron(7)


@pytest.mark.parametrize("enabled", [False, True], ids=["alarm_only", "retrain_on_drift"])
def test_a_drifted_monitor_run_requests_one_retrain_when_configured(
    tmp_path, digits_folder, enabled
):
    extra = f"[monitoring]\nretrain_on_drift = {str(enabled).lower()}\n"
    config_path = make_project(tmp_path / "p", digits_folder, extra=extra)
    sensor = build_definitions(config_path).resolve_sensor_def("retrain_on_drift")
    project = MllifeProject(config_path=str(config_path))
    store = Store(load_config(config_path).store_path)
    instance = dg.DagsterInstance.ephemeral()

    def evaluate(run, event):
        context = dg.build_run_status_sensor_context(
            sensor_name="retrain_on_drift", dagster_event=event, dagster_instance=instance,
            dagster_run=run, resources={"project": project},
        )  # fmt: skip
        return sensor(context)

    deploy(store, "a" * 64)
    quiet = finished_monitor_run(instance)
    assert not record_monitor_run(store, quiet[0].run_id, shift=0.0)
    assert isinstance(evaluate(*quiet), dg.SkipReason)  # no drift: no retrain

    drifted = finished_monitor_run(instance)
    assert record_monitor_run(store, drifted[0].run_id, shift=0.5)
    answer = evaluate(*drifted)
    if not enabled:
        assert isinstance(answer, dg.SkipReason) and "retrain_on_drift is off" in str(answer)
        return
    assert isinstance(answer, dg.RunRequest)
    assert answer.run_key == f"retrain-after-drift-{drifted[0].run_id}"

    # drift measured against another champion does not count for the new one
    deploy(store, "b" * 64)
    assert isinstance(evaluate(*drifted), dg.SkipReason)
