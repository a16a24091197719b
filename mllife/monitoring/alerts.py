"""Alerts that reach a person: what happened, which model, the figure and the next step,
sent once to the channels of ``[alerts]`` (a webhook, an email, a command).

:func:`current_alerts` reads the store for what deserves one: a refused challenger,
dataset drift, a champion past its age limit, served accuracy (from feedback) below the
champion's test interval, a new champion's served p95 latency worse than the one it
replaced, and a stored champion under other library versions than it was trained with.
A failed blocking check comes from the run that hit it (:func:`check_failed_alert`).
Sending them, once each, is ``mllife.monitoring.alert_delivery``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mllife.config.project import ProjectConfig
from mllife.metrics import wilson_interval
from mllife.models.environment import describe_changes, environment_changes
from mllife.storage.store import Store

__all__ = ["Alert", "check_failed_alert", "current_alerts"]


@dataclass(frozen=True)
class Alert:
    #: the dedupe key: the same key is never sent twice
    key: str
    kind: str
    #: one line: what happened and to which model
    subject: str
    #: the figure behind it, and the next step
    figure: str
    next_step: str
    model_hash: str | None = None

    @property
    def text(self) -> str:
        return f"mllife: {self.subject}. {self.figure}. Next: {self.next_step}"


def check_failed_alert(run_id: str, check: str, detail: str) -> Alert:
    """A blocking check that failed in ``run_id``: nothing below it ran."""
    return Alert(
        key=f"check:{run_id}:{check}",
        kind="check_failed",
        subject=f"blocking check {check} failed in run {run_id[:8]}",
        figure=detail or "see the run's log",
        next_step="fix what the check names and run again (`mllife run`); nothing below"
        " it was trained or deployed",
    )


def current_alerts(config: ProjectConfig, store: Store) -> list[Alert]:
    """Every alert the store's records call for now (sent or not: delivery dedupes)."""
    alerts = [*_refused(store), *_drift(store)]
    champion = store.champion()
    if champion is not None:
        alerts += _stale(config, store, champion)
        alerts += _served_accuracy(config, store, champion)
        alerts += _latency(config, store, champion)
        alerts += _environment(store, champion)
    return alerts


def _refused(store: Store) -> list[Alert]:
    rows = store.query(
        "SELECT run_id, model_hash, name, summary FROM challengers WHERE NOT passed"
        " ORDER BY created_at DESC LIMIT 20"
    )
    return [
        Alert(
            key=f"refused:{r['run_id']}:{r['model_hash']}",
            kind="refused",
            subject=f"challenger {r['name']} {r['model_hash'][:12]} was refused",
            figure=r["summary"],
            next_step="read the report's gate table (`mllife report`); the champion stays",
            model_hash=r["model_hash"],
        )
        for r in rows.iter_rows(named=True)
    ]


def _drift(store: Store) -> list[Alert]:
    rows = store.query(
        "SELECT run_id, scope, any_value(model_hash) AS model_hash,"
        " count(*) FILTER (WHERE drifted AND column_name IS NOT NULL) AS drifted,"
        " count(*) FILTER (WHERE column_name IS NOT NULL) AS columns"
        " FROM drift_results GROUP BY run_id, scope HAVING bool_or(dataset_drift)"
        " ORDER BY max(created_at) DESC LIMIT 20"
    )
    scopes = {"new_data": "new data", "served": "served inputs"}
    return [
        Alert(
            key=f"drift:{r['run_id']}:{r['scope']}",
            kind="drift",
            subject=f"dataset drift in {scopes.get(r['scope'], r['scope'])} against champion"
            f" {(r['model_hash'] or '')[:12]}",
            figure=f"{r['drifted']} of {r['columns']} columns drifted (corrected p-values)",
            next_step="look at the report's drift section; label the new data and retrain"
            " (`mllife run`)",
            model_hash=r["model_hash"],
        )
        for r in rows.iter_rows(named=True)
    ]


def _stale(config: ProjectConfig, store: Store, champion) -> list[Alert]:
    from mllife.monitoring.batch import STALE_ADVICE, staleness

    age = staleness(config, store)
    if age.passed:
        return []
    return [
        Alert(
            key=f"stale:{champion.model_hash}:{champion.id}",
            kind="stale",
            subject=f"champion {champion.name} {champion.model_hash[:12]} is past its age limit",
            figure=age.reason,
            next_step=STALE_ADVICE,
            model_hash=champion.model_hash,
        )
    ]


def _served_accuracy(config: ProjectConfig, store: Store, champion) -> list[Alert]:
    """Accuracy on labelled served predictions since the deployment, against the
    champion's sealed test accuracy interval."""
    served = store.query(
        "WITH latest AS (SELECT prediction_id, label FROM feedback"
        "  QUALIFY row_number() OVER (PARTITION BY prediction_id ORDER BY received_at DESC) = 1)"
        " SELECT count(*) AS n, avg((p.predicted = f.label)::INT) AS accuracy"
        " FROM predictions p JOIN latest f USING (prediction_id)"
        " WHERE p.answered AND p.model_hash = ? AND p.received_at >= ?",
        [champion.model_hash, champion.created_at],
    )
    n, accuracy = int(served["n"][0]), served["accuracy"][0]
    tested = store.query(
        "SELECT e.value AS accuracy, s.n_test FROM evaluations e JOIN splits s USING"
        " (split_version) WHERE e.model_hash = ? AND e.split = 'test'"
        " AND e.metric = 'accuracy' ORDER BY e.created_at DESC LIMIT 1",
        [champion.model_hash],
    )
    if n < config.alerts.min_labelled or not tested.height:
        return []
    test_accuracy, n_test = tested["accuracy"][0], int(tested["n_test"][0])
    low, high = wilson_interval(test_accuracy * n_test, n_test, 0.95)
    if accuracy >= low:
        return []
    return [
        Alert(
            key=f"served_accuracy:{champion.model_hash}:{champion.id}",
            kind="served_accuracy",
            subject=f"champion {champion.name} {champion.model_hash[:12]} is less accurate on"
            " served data than on its test set",
            figure=f"served accuracy {accuracy:.3f} on {n} labelled predictions, below its"
            f" test interval [{low:.3f}, {high:.3f}] ({test_accuracy:.3f} on {n_test} rows)",
            next_step="compare served inputs with the training data (drift section); add"
            " the labelled served data (`mllife data add`) and retrain",
            model_hash=champion.model_hash,
        )
    ]


def _latency(config: ProjectConfig, store: Store, champion) -> list[Alert]:
    """The champion's served p95 against the champion it replaced, each over its own
    time in service."""
    previous = store.query("SELECT previous_hash FROM deployments WHERE id = ?", [champion.id])
    before = previous["previous_hash"][0] if previous.height else None
    if not before:
        return []
    rows = store.query(
        "SELECT model_hash, count(*) AS n, quantile_cont(latency_ms, 0.95) AS p95"
        " FROM predictions WHERE answered AND role = 'champion' AND model_hash IN (?, ?)"
        " GROUP BY model_hash",
        [champion.model_hash, before],
    )
    by = {r["model_hash"]: r for r in rows.iter_rows(named=True)}
    new, old = by.get(champion.model_hash), by.get(before)
    limit = config.alerts.min_served
    if new is None or old is None or new["n"] < limit or old["n"] < limit:
        return []
    budget = 1 + config.alerts.max_latency_increase
    if new["p95"] <= old["p95"] * budget:
        return []
    return [
        Alert(
            key=f"latency:{champion.model_hash}:{champion.id}",
            kind="latency",
            subject=f"champion {champion.name} {champion.model_hash[:12]} answers slower than"
            f" the champion it replaced ({before[:12]})",
            figure=f"served p95 {new['p95']:.1f} ms over {new['n']} predictions vs"
            f" {old['p95']:.1f} ms over {old['n']}"
            f" (allowed +{config.alerts.max_latency_increase:.0%})",
            next_step="set [promotion] max_p95_latency_ms to gate on it, or roll back"
            " (`mllife rollback`)",
            model_hash=champion.model_hash,
        )
    ]


def _environment(store: Store, champion) -> list[Alert]:
    row = store.model_row(champion.model_hash)
    changes = environment_changes(row["spec"] if row else None)
    if not changes:
        return []
    described = describe_changes(changes)
    return [
        Alert(
            key=f"environment:{champion.model_hash}:{described}",
            kind="environment",
            subject=f"champion {champion.name} {champion.model_hash[:12]} runs under other"
            " library versions than it was trained with",
            figure=described,
            next_step="retrain under these versions (`mllife run --force`), or install the"
            " versions it was trained with (requirements.lock)",
            model_hash=champion.model_hash,
        )
    ]
