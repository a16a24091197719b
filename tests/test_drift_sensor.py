"""The periodic drift sensor, ticked with ``dg.build_sensor_context`` against a real store:
a monitor run every window; a retrain request once per drifted monitor run, only when
``[monitoring] retrain_on_drift`` is set."""

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets.definitions import build_definitions
from assets.resources import MllifeProject
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
        action="promote",
        model_hash=model_hash,
        name="m",
        data_version="d",
        reason="test",
        decision={},
        run_id=None,
        expected_previous=current.model_hash if current else None,
    )


@pytest.fixture(params=[False, True], ids=["alarm_only", "retrain_on_drift"])
def sensor_project(request, tmp_path, digits_folder):
    extra = f"[monitoring]\nretrain_on_drift = {str(request.param).lower()}\n"
    config_path = make_project(tmp_path / "p", digits_folder, extra=extra)
    defs = build_definitions(config_path)
    sensor = defs.resolve_sensor_def("drift_sensor")
    project = MllifeProject(config_path=str(config_path))
    store = Store(load_config(config_path).store_path)
    return sensor, project, store, request.param


def tick(sensor, project, cursor):
    with dg.build_sensor_context(cursor=cursor, resources={"project": project}) as context:
        result = sensor.evaluate_tick(context)
        return [(r.job_name, r.run_key) for r in result.run_requests], context.cursor


def test_drift_sensor_requests_a_retrain_once_per_drifted_run_when_configured(sensor_project):
    sensor, project, store, retrain_on_drift = sensor_project
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED

    # No champion yet: only the periodic monitor run.
    requests, cursor = tick(sensor, project, None)
    assert [job for job, _ in requests] == ["monitor"]
    assert requests[0][1].startswith("monitor-")  # one run key per interval window

    deploy(store, "a" * 64)
    assert not record_monitor_run(store, "quiet-run", shift=0.0)
    requests, cursor = tick(sensor, project, cursor)
    assert [job for job, _ in requests] == ["monitor"]  # no drift: no retrain

    assert record_monitor_run(store, "drifted-run", shift=0.5)
    requests, cursor = tick(sensor, project, cursor)
    if not retrain_on_drift:
        assert [job for job, _ in requests] == ["monitor"]
        return
    assert ("retrain", "retrain-after-drift-drifted-run") in requests
    assert cursor == "drifted-run"

    # The same drifted run is not retrained twice, however many ticks follow.
    for _ in range(3):
        requests, cursor = tick(sensor, project, cursor)
        assert [job for job, _ in requests] == ["monitor"]

    # Drift measured against another champion does not count for the new one...
    deploy(store, "b" * 64)
    requests, cursor = tick(sensor, project, cursor)
    assert [job for job, _ in requests] == ["monitor"]
    # ...but a new drifted monitor run on it does.
    assert record_monitor_run(store, "drifted-again", shift=-0.5)
    requests, cursor = tick(sensor, project, cursor)
    assert ("retrain", "retrain-after-drift-drifted-again") in requests
