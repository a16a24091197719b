"""Staged rollout: a challenger that passed every gate serves shadow or canary traffic
before it takes over, and is promoted or withdrawn by an explicit rule.

States, each transition one row of the append-only ``rollouts`` table::

    (passed every gate) --stage--> staged --rule met / mllife promote--> promoted
                                    staged --rule failed / mllife withdraw--> withdrawn
                                    staged --a newer challenger is staged--> withdrawn

A refused challenger is never staged, so it never receives traffic. The rule (see
:func:`judge`) reads what was logged since staging, for both models over the same
period: the 5xx rate and p95 latency once the challenger has answered enough requests,
then, with enough labels, accuracy on served feedback with an interval of the
difference. A challenger the traffic cannot settle is withdrawn after ``max_days``
with a verdict that says so, instead of waiting forever.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mllife._errors import PromotionError, StoreError
from mllife.config.ops import RolloutConfig
from mllife.storage.store import Deployment, Store

__all__ = [
    "Evidence",
    "Staged",
    "closing_rollout",
    "judge",
    "promote_staged",
    "record_verdict",
    "refusal",
    "rollout_evidence",
    "rollout_history",
    "stage",
    "staged_challenger",
    "withdraw",
]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Staged:
    model_hash: str
    name: str
    since: datetime
    reason: str


@dataclass(frozen=True)
class Evidence:
    predictions: int
    #: labelled predictions of the challenger, and of the champion in the same window
    feedback: int
    champion_feedback: int
    accuracy: float | None
    champion_accuracy: float | None
    #: share of shadowed requests where both models gave the same answer (shadow only)
    agreement: float | None
    #: requests each model answered, and those it failed to answer (5xx), since staging
    requests: int = 0
    champion_requests: int = 0
    failures: int = 0
    champion_failures: int = 0
    p95_ms: float | None = None
    champion_p95_ms: float | None = None
    #: how long the challenger has been staged
    staged_days: float = 0.0

    @property
    def error_rate(self) -> float:
        return self.failures / max(self.requests + self.failures, 1)

    @property
    def champion_error_rate(self) -> float:
        return self.champion_failures / max(self.champion_requests + self.champion_failures, 1)

    def accuracy_difference(self, confidence: float = 0.95) -> tuple[float, float, float]:
        """(challenger - champion, low, high): Newcombe's interval of the difference of
        two proportions from their Wilson intervals. With shadow traffic the rows are
        the same, and this unpaired interval is the cautious (wider) one."""
        from mllife.metrics import difference_interval

        p1, p2 = self.accuracy, self.champion_accuracy
        assert p1 is not None and p2 is not None
        return difference_interval(p1, self.feedback, p2, self.champion_feedback, confidence)

    def describe(self) -> str:
        def acc(value: float | None) -> str:
            return "-" if value is None else f"{value:.3f}"

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} ms"

        text = (
            f"{self.predictions} predictions, {self.feedback} labelled (champion"
            f" {self.champion_feedback}); accuracy on feedback {acc(self.accuracy)} vs"
            f" champion {acc(self.champion_accuracy)}; 5xx {self.error_rate:.1%} of"
            f" {self.requests + self.failures} requests vs champion"
            f" {self.champion_error_rate:.1%}; p95 {ms(self.p95_ms)} vs"
            f" {ms(self.champion_p95_ms)}"
        )
        if self.agreement is not None:
            text += f"; agrees with the champion on {self.agreement:.1%} of requests"
        return text


def staged_challenger(store: Store) -> Staged | None:
    """The model now staged, or None: the newest transition, when it is 'staged'."""
    with store.reading() as conn:
        return _staged_in(conn)


def _record(
    conn,
    staged_hash: str,
    name: str,
    state: str,
    reason: str,
    evidence: Evidence | None,
    run_id: str | None,
) -> None:
    conn.execute(
        "INSERT INTO rollouts (model_hash, name, state, reason, evidence, run_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            staged_hash,
            name,
            state,
            reason,
            None if evidence is None else json.dumps(asdict(evidence)),
            run_id,
            _now(),
        ],
    )


def stage(
    store: Store, *, model_hash: str, name: str, reason: str, run_id: str | None = None
) -> Staged:
    """Stage ``model_hash`` (withdrawing a model staged before it). Only a model whose
    newest challenger verdict passed every gate is staged: one refused, or one that never
    faced the gates (a baseline, a model trained by hand), never receives traffic."""
    current = store.champion()
    if current is not None and current.model_hash == model_hash:
        raise PromotionError(f"{name} {model_hash[:12]} is the champion: nothing to stage")
    with store.writing() as conn:
        # checked inside the write: a run refusing the model meanwhile cannot be missed
        if why := refusal(conn, model_hash):
            raise PromotionError(
                f"{name} {model_hash[:12]} {why}; only a challenger that passed every gate"
                " receives traffic"
            )
        before = _staged_in(conn)
        if before is not None and before.model_hash != model_hash:
            why = f"replaced by {name} {model_hash[:12]}, staged after it"
            _record(conn, before.model_hash, before.name, "withdrawn", why, None, run_id)
        if before is None or before.model_hash != model_hash:
            _record(conn, model_hash, name, "staged", reason, None, run_id)
        return _staged_in(conn)


def refusal(conn, model_hash: str) -> str | None:
    """Why ``model_hash`` may not be staged or promoted from staging (its newest
    challenger verdict refused it, or it has none), or None: its newest verdict passed."""
    verdict = conn.execute(
        "SELECT passed, summary FROM challengers WHERE model_hash = ?"
        " ORDER BY created_at DESC LIMIT 1",
        [model_hash],
    ).fetchone()
    if verdict is None:
        return "never faced the promotion gates (no challenger decision is recorded for it)"
    if not verdict[0]:
        return f"was refused by the promotion policy ({verdict[1]})"
    return None


def record_verdict(
    store: Store, *, model_hash: str, name: str, passed: bool, summary: str, run_id: str | None
) -> None:
    """Record a challenger's verdict. A refusal of the staged model ends its rollout in
    the same transaction (serving reads its lineup from this store), so a model refused
    by any later decision never answers another request nor gets promoted."""
    with store.writing() as conn:
        conn.execute(
            "INSERT INTO challengers VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, model_hash, name, passed, summary, _now()],
        )
        _withdraw_refused(conn, model_hash, run_id=run_id)


def _withdraw_refused(conn, model_hash: str, *, run_id: str | None) -> None:
    staged = _staged_in(conn)
    if (
        staged is not None
        and staged.model_hash == model_hash
        and (why := refusal(conn, model_hash))
    ):
        _record(conn, model_hash, staged.name, "withdrawn", f"it {why}", None, run_id)


def _staged_in(conn) -> Staged | None:
    row = conn.execute(
        "SELECT model_hash, name, state, reason, created_at FROM rollouts ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None or row[2] != "staged":
        return None
    return Staged(row[0], row[1], row[4], row[3])


def withdraw(
    store: Store, *, reason: str, evidence: Evidence | None = None, run_id: str | None = None
) -> Staged:
    """End the rollout of the staged model; the champion stays."""
    if not reason.strip():
        raise PromotionError("withdrawing needs a --reason, recorded in the history")
    with store.writing() as conn:
        staged = _staged_in(conn)
        if staged is None:
            raise PromotionError("no challenger is staged: nothing to withdraw")
        _record(conn, staged.model_hash, staged.name, "withdrawn", reason, evidence, run_id)
    return staged


def promote_staged(
    store: Store, staged: Staged, *, reason: str, evidence: Evidence | None, run_id: str | None
) -> Deployment:
    """Make the staged model the champion (one deployment row) and close its rollout."""
    current = store.champion()
    row = store.model_row(staged.model_hash)
    if row is None:
        raise StoreError(f"staged model {staged.model_hash[:12]} is not in the store")
    deployment = store.record_deployment(
        action="promote",
        model_hash=staged.model_hash,
        name=staged.name,
        data_version=row["data_version"],
        reason=f"staged rollout: {reason}",
        decision={"staged_rollout": True, "evidence": evidence and asdict(evidence)},
        run_id=run_id,
        expected_previous=current.model_hash if current else None,
        also=_verified_staged(
            staged.model_hash,
            closing_rollout(staged.model_hash, reason=reason, evidence=evidence, run_id=run_id),
        ),
    )
    return deployment


def closing_rollout(model_hash: str, *, reason: str, evidence: Evidence | None, run_id: str | None):
    """For ``record_deployment(also=...)``: the staged model becoming the champion (by
    the rule or by hand) ends its rollout, in the same transaction."""

    def close(conn) -> None:
        staged = _staged_in(conn)
        if staged is not None and staged.model_hash == model_hash:
            _record(conn, model_hash, staged.name, "promoted", reason, evidence, run_id)

    return close


def _verified_staged(model_hash: str, close):
    """``close``, after checking in the same transaction that the staged model's newest
    verdict still passes every gate (a later run may have refused it)."""

    def check_then_close(conn) -> None:
        if why := refusal(conn, model_hash):
            raise PromotionError(f"staged model {model_hash[:12]} {why}: not promoted")
        close(conn)

    return check_then_close


def rollout_evidence(store: Store, staged: Staged, champion_hash: str) -> Evidence:
    """What the logged traffic since staging says about the staged model and the champion
    (the same period for both)."""
    since = staged.since
    served = store.query(
        "SELECT model_hash, count(*) AS n, count(DISTINCT request_id) AS requests,"
        " quantile_cont(latency_ms, 0.95) AS p95 FROM predictions"
        " WHERE model_hash IN (?, ?) AND received_at >= ? GROUP BY model_hash",
        [staged.model_hash, champion_hash, since],
    )
    served_by = {r["model_hash"]: r for r in served.iter_rows(named=True)}
    failed = store.query(
        "SELECT model_hash, count(*) AS n FROM served_failures"
        " WHERE model_hash IN (?, ?) AND received_at >= ? GROUP BY model_hash",
        [staged.model_hash, champion_hash, since],
    )
    failed_by = dict(zip(failed["model_hash"], failed["n"], strict=True))
    # each request position's label, from feedback on the prediction that was answered
    labelled = store.query(
        "WITH labels AS ("
        "  SELECT p.request_id, p.position, any_value(f.label) AS label"
        "  FROM predictions p JOIN feedback f USING (prediction_id)"
        "  WHERE p.answered GROUP BY p.request_id, p.position)"
        " SELECT p.model_hash, count(*) AS n, avg((p.predicted = l.label)::INT) AS accuracy"
        " FROM predictions p JOIN labels l USING (request_id, position)"
        " WHERE p.received_at >= ? AND p.model_hash IN (?, ?) GROUP BY p.model_hash",
        [since, staged.model_hash, champion_hash],
    )
    by_model = {r["model_hash"]: r for r in labelled.iter_rows(named=True)}
    mine, theirs = by_model.get(staged.model_hash), by_model.get(champion_hash)
    agreement = store.query(
        "SELECT avg((s.predicted = c.predicted)::INT) AS agreement, count(*) AS n"
        " FROM predictions s JOIN predictions c USING (request_id, position)"
        " WHERE s.model_hash = ? AND c.model_hash = ? AND s.role = 'shadow'"
        " AND s.received_at >= ?",
        [staged.model_hash, champion_hash, since],
    )
    ours, champion = served_by.get(staged.model_hash, {}), served_by.get(champion_hash, {})
    return Evidence(
        predictions=int(ours.get("n") or 0),
        feedback=int(mine["n"]) if mine else 0,
        champion_feedback=int(theirs["n"]) if theirs else 0,
        accuracy=float(mine["accuracy"]) if mine else None,
        champion_accuracy=float(theirs["accuracy"]) if theirs else None,
        agreement=float(agreement["agreement"][0]) if agreement["n"][0] else None,
        requests=int(ours.get("requests") or 0),
        champion_requests=int(champion.get("requests") or 0),
        failures=int(failed_by.get(staged.model_hash, 0)),
        champion_failures=int(failed_by.get(champion_hash, 0)),
        p95_ms=ours.get("p95"),
        champion_p95_ms=champion.get("p95"),
        staged_days=(_now() - since).total_seconds() / 86400,
    )


def judge(evidence: Evidence, rule: RolloutConfig) -> tuple[str, str]:
    """("promote" | "withdraw" | "wait", why) by the policy's rule.

    In order: once the challenger has had ``min_predictions``, a 5xx rate more than
    ``max_error_increase`` above the champion's, or a p95 latency more than
    ``max_latency_increase`` above it, withdraws it. With ``min_feedback`` labels each,
    the 95% interval of the accuracy difference (challenger - champion) decides: its
    lower bound at or above ``-max_accuracy_drop`` promotes (no worse than the allowed
    drop, beyond chance), its upper bound below it withdraws (worse, beyond chance),
    otherwise it waits for more labels. Still undecided after ``max_days``: withdrawn,
    saying why.
    """
    e = evidence
    if e.predictions + e.failures >= rule.min_predictions:  # a failed request counts
        if e.error_rate > e.champion_error_rate + rule.max_error_increase:
            return "withdraw", (
                f"5xx rate {e.error_rate:.1%} ({e.failures} of {e.requests + e.failures}"
                f" requests) vs champion {e.champion_error_rate:.1%}: more than the allowed"
                f" +{rule.max_error_increase:.1%}"
            )
        if (
            e.p95_ms is not None
            and e.champion_p95_ms is not None
            and e.p95_ms > e.champion_p95_ms * (1 + rule.max_latency_increase)
        ):
            return "withdraw", (
                f"p95 latency {e.p95_ms:.1f} ms vs champion {e.champion_p95_ms:.1f} ms: more"
                f" than the allowed +{rule.max_latency_increase:.0%}"
            )
    need = []
    if e.predictions < rule.min_predictions:
        need.append(f"{e.predictions} of {rule.min_predictions} predictions")
    if e.feedback < rule.min_feedback:
        need.append(f"{e.feedback} of {rule.min_feedback} labelled")
    if e.champion_feedback < rule.min_feedback:
        need.append(f"champion {e.champion_feedback} of {rule.min_feedback} labelled")
    if need:
        return _waited(e, rule, "not enough traffic yet: " + ", ".join(need))
    difference, low, high = e.accuracy_difference()
    floor = -rule.max_accuracy_drop
    figures = (
        f"accuracy on served feedback {e.accuracy:.3f} vs champion {e.champion_accuracy:.3f}"
        f" over {e.feedback} and {e.champion_feedback} labels: difference"
        f" {difference * 100:+.1f} points, 95% interval [{low * 100:+.1f}, {high * 100:+.1f}]"
    )
    allowed = f"the allowed drop {floor * 100:+.1f}"
    if low >= floor:
        return "promote", f"{figures}, lower bound at or above {allowed}"
    if high < floor:
        return "withdraw", f"{figures}, worse than {allowed} beyond chance"
    return _waited(e, rule, f"too close to call: {figures} spans {allowed}; more labels")


def _waited(e: Evidence, rule: RolloutConfig, why: str) -> tuple[str, str]:
    if e.staged_days < rule.max_days:
        return "wait", why
    return "withdraw", (
        f"never judged: after {e.staged_days:.1f} days ({rule.max_days:g} allowed), {why}"
        " — withdrawn; stage it again with a larger [serving.rollout] share or more"
        " feedback, or decide by hand (`mllife promote` / `mllife withdraw`)"
    )


def rollout_history(store: Store, limit: int = 20):
    """The newest rollout transitions, newest first."""
    return store.query(
        "SELECT id, created_at, state, name, model_hash, reason FROM rollouts"
        " ORDER BY id DESC LIMIT ?",
        [limit],
    )
