"""The rollout rule: what the traffic logged since staging says about the staged model
and the champion over the same period (:func:`rollout_evidence`), and the verdict it
leads to (:func:`judge`): promote, withdraw, or wait -- never forever."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mllife.config.ops import RolloutConfig
from mllife.storage.store import Store

if TYPE_CHECKING:
    from mllife.promotion.rollout import Staged

__all__ = ["Evidence", "judge", "rollout_evidence"]


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
        staged_days=(datetime.now(UTC).replace(tzinfo=None) - since).total_seconds() / 86400,
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
