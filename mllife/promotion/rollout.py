"""Staged rollout: a challenger that passed every gate serves shadow or canary traffic
before it takes over, and is promoted or withdrawn by an explicit rule.

States, each transition one row of the append-only ``rollouts`` table::

    (passed every gate) --stage--> staged --rule met / mllife promote--> promoted
                                    staged --rule failed / mllife withdraw--> withdrawn
                                    staged --a newer challenger is staged--> withdrawn

A refused challenger is never staged, so it never receives traffic. The rule that
promotes or withdraws it, from what was logged since staging, is
``mllife.promotion.rollout_rule``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mllife._errors import PromotionError, StoreError
from mllife.storage.store import Deployment, Store

if TYPE_CHECKING:  # the rule's evidence, recorded with each transition
    from mllife.promotion.rollout_rule import Evidence

__all__ = [
    "Staged",
    "closing_rollout",
    "promote_staged",
    "record_verdict",
    "refusal",
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


def rollout_history(store: Store, limit: int = 20):
    """The newest rollout transitions, newest first."""
    return store.query(
        "SELECT id, created_at, state, name, model_hash, reason FROM rollouts"
        " ORDER BY id DESC LIMIT ?",
        [limit],
    )
