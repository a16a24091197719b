"""Alerts sent once: :func:`deliver_alerts` claims each alert's key in the store's
``alerts`` table inside one transaction (so two senders, a run and the sensor, never send
the same alert twice), sends it to every ``[alerts]`` channel with retries and backoff
(tenacity), and records whether it was delivered. An unreachable channel never fails the
caller: the alert is recorded as undelivered, with the error, and ``mllife status``
lists it (:func:`undelivered_alerts`)."""

from __future__ import annotations

import json
import smtplib
import subprocess
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

from mllife.config.project import ProjectConfig
from mllife.monitoring.alerts import Alert
from mllife.storage.store import Store

__all__ = ["Delivery", "deliver_alerts", "undelivered_alerts"]


@dataclass(frozen=True)
class Delivery:
    alert: Alert
    delivered: bool
    error: str | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def deliver_alerts(config: ProjectConfig, store: Store, alerts: list[Alert]) -> list[Delivery]:
    """Send each alert not sent before to every configured channel; record the outcome.
    Returns what this call sent (already-sent alerts are skipped)."""
    settings = config.alerts
    if not settings.configured or not alerts:
        return []
    claimed = _claim(store, alerts)
    deliveries = []
    for alert in claimed:
        errors = [
            f"{channel}: {error}" for channel, error in _send_everywhere(settings, alert) if error
        ]
        deliveries.append(Delivery(alert, not errors, "; ".join(errors) or None))
    with store.writing() as conn:
        for d in deliveries:
            conn.execute(
                "UPDATE alerts SET delivered = ?, error = ?, sent_at = ? WHERE alert_key = ?",
                [d.delivered, d.error, _now(), d.alert.key],
            )
    return deliveries


def _claim(store: Store, alerts: list[Alert]) -> list[Alert]:
    """The alerts whose key this call recorded first (inside one transaction)."""
    unique = {a.key: a for a in alerts}
    with store.writing() as conn:
        known = {
            row[0]
            for row in conn.execute(
                f"SELECT alert_key FROM alerts WHERE alert_key IN ({', '.join('?' * len(unique))})",
                list(unique),
            ).fetchall()
        }
        new = [a for key, a in unique.items() if key not in known]
        for a in new:
            conn.execute(
                "INSERT INTO alerts (alert_key, kind, model_hash, text, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [a.key, a.kind, a.model_hash, a.text, _now()],
            )
    return new


def _send_everywhere(settings, alert: Alert):
    channels = []
    if settings.webhook:
        channels.append(("webhook", lambda: _post(settings.webhook, alert, settings)))
    if settings.email:
        channels.append(("email", lambda: _mail(alert, settings)))
    if settings.command:
        channels.append(("command", lambda: _run(alert, settings)))
    for name, send in channels:
        yield name, _with_retries(send, settings)


def _with_retries(send, settings) -> str | None:
    """None once ``send`` succeeded; the last error after ``attempts`` tries with
    exponential backoff (0.5 s, 1 s, 2 s ...)."""
    from tenacity import RetryError, Retrying, stop_after_attempt, wait_exponential

    try:
        for attempt in Retrying(
            stop=stop_after_attempt(settings.attempts),
            wait=wait_exponential(multiplier=0.5, max=8),
        ):
            with attempt:
                send()
    except RetryError as exc:
        error = exc.last_attempt.exception()
        return f"{type(error).__name__}: {error}"[:500]
    return None


def _payload(alert: Alert) -> bytes:
    return json.dumps({"text": alert.text, "alert": asdict(alert)}).encode()


def _post(url: str, alert: Alert, settings) -> None:
    request = urllib.request.Request(
        url, data=_payload(alert), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as response:
        response.read(65536)  # a 2xx answer; urllib raises on 4xx/5xx


def _mail(alert: Alert, settings) -> None:
    message = EmailMessage()
    message["Subject"] = f"mllife: {alert.subject}"
    message["From"], message["To"] = settings.smtp_from, settings.email
    message.set_content(f"{alert.figure}.\n\nNext: {alert.next_step}\n")
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds
    ) as smtp:
        smtp.send_message(message)


def _run(alert: Alert, settings) -> None:
    subprocess.run(
        list(settings.command), input=_payload(alert), timeout=settings.timeout_seconds,
        check=True, capture_output=True,
    )  # fmt: skip


def undelivered_alerts(store: Store, limit: int = 10):
    """Alerts whose delivery failed, newest first (``mllife status``)."""
    return store.query(
        "SELECT created_at, kind, text, error FROM alerts WHERE NOT delivered"
        " ORDER BY created_at DESC LIMIT ?",
        [limit],
    )
