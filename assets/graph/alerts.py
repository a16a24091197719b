"""Alerts from the orchestration side: after each `mllife run` (a failed blocking check
of that run, and whatever the store calls for), and from the ``alerts`` sensor when a
daemon runs (``mllife ui``, the team deployment). What an alert says and how it is sent
once live in ``mllife.monitoring.alerts``."""

from __future__ import annotations

import dagster as dg

from assets.graph.acceptance import BLOCKING_CHECKS
from assets.graph.resources import MllifeProject
from mllife.config.project import ProjectConfig
from mllife.monitoring.alert_delivery import deliver_alerts
from mllife.monitoring.alerts import Alert, check_failed_alert, current_alerts
from mllife.storage.store import Store

__all__ = ["build_alerts_sensor", "failed_check_alerts", "send_alerts"]

_BLOCKING = {(asset, check) for asset, checks in BLOCKING_CHECKS.items() for check in checks}


def failed_check_alerts(run_id: str, events) -> list[Alert]:
    """An alert per blocking check that failed in the run whose ``events`` these are."""
    alerts = []
    for event in events:
        if event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        data = event.asset_check_evaluation_data
        key = (data.asset_key.to_user_string(), data.check_name)
        if data.passed or key not in _BLOCKING:
            continue
        meta = {k: getattr(v, "value", v) for k, v in data.metadata.items()}
        detail = str(meta.get("summary") or meta.get("reason") or meta.get("problems") or "")
        alerts.append(check_failed_alert(run_id, ".".join(key), detail[:400]))
    return alerts


def send_alerts(config: ProjectConfig, extra: list[Alert] = ()) -> list[str]:
    """Deliver what is due; one line per alert sent (for the run's summary)."""
    if not config.alerts.configured or not config.store_path.exists():
        return []
    store = Store(config.store_path)
    lines = []
    for d in deliver_alerts(config, store, [*extra, *current_alerts(config, store)]):
        said = "sent" if d.delivered else f"NOT delivered ({d.error})"
        lines.append(f"alert {said}: {d.alert.subject}")
    return lines


def build_alerts_sensor(config: ProjectConfig) -> dg.SensorDefinition:
    on = config.alerts.configured

    @dg.sensor(
        name="alerts",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED,
        description="Sends [alerts] (webhook, email, command) once each: a failed blocking"
        " check, a refused challenger, drift, a champion past its age limit, served accuracy"
        " below the test interval, a slower new champion, changed library versions. On by"
        " default when [alerts] names a channel.",
    )
    def alerts(context: dg.SensorEvaluationContext, project: MllifeProject):
        failed = context.instance.get_runs(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=10
        )
        extra = []
        for run in failed:
            events = [
                record.event_log_entry.dagster_event
                for record in context.instance.get_records_for_run(
                    run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
                ).records
            ]
            extra += failed_check_alerts(run.run_id, events)
        lines = send_alerts(project.config, extra)
        return dg.SkipReason("; ".join(lines) or "nothing new to alert")

    return alerts
