"""Deployment: promote the challenger (after proving its artifact reproduces its
evaluation), promote a recorded model by hand, roll back -- each one store transaction
recorded in the deployment history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mllife._errors import ChampionChangedError, PromotionError, StoreError
from mllife._faults import crash_point
from mllife.config.project import ProjectConfig
from mllife.data.split import SplitSet
from mllife.models.registry import ModelRef, load_model
from mllife.preprocess.inputs import model_inputs, split_rows
from mllife.promotion.challenger import Challenger
from mllife.promotion.rollout import closing_rollout, stage
from mllife.storage.store import Deployment, Store

__all__ = ["PromotionResult", "promote", "promote_model", "rollback"]


@dataclass(frozen=True)
class PromotionResult:
    #: "promoted", "unchanged" (already champion), "staged" (passed; served as shadow or
    #: canary until the rollout rule decides) or "not promoted" (a gate refused)
    action: str
    #: the champion after this step; None when a refused first challenger left none
    champion: Deployment | None
    verified_rows: int


def promote(
    challenger: Challenger,
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store,
    run_id: str | None,
) -> PromotionResult:
    """Make the challenger the champion, after proving its artifact loads and predicts.

    The artifact is re-loaded by hash and must reproduce the evaluation's validation
    predictions exactly (same preprocessing, same model); only then does one store
    transaction switch the champion, refusing if it changed since the decision.
    """
    decision = challenger.decision
    if not decision.passed:
        # A refusal is a normal outcome: the champion stays, and the run goes on to its
        # report and artifact tracking (the refusal is in the challengers history).
        return PromotionResult("not promoted", store.champion(), 0)
    if decision.already_champion:
        # nothing switches: the champion's artifact was proved when it was promoted
        # (and serving checks its hash on every load)
        return PromotionResult("unchanged", store.champion(), 0)
    ref = challenger.evaluation.ref
    model = load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    rows = split_rows(splits.rows, "validation")
    replay = model.predict(model_inputs(rows, config=config, columns=splits.columns))
    expected = challenger.evaluation.validation_predictions
    mismatches = int(np.sum(np.asarray(replay, dtype=str) != np.asarray(expected, dtype=str)))
    if mismatches:
        raise PromotionError(
            f"the saved {ref.name} artifact predicts differently from its evaluation on"
            f" {mismatches} of {rows.height} validation rows; not promoting"
        )
    if config.serving.rollout.stage and decision.champion_hash is not None:
        # [serving.rollout] stage: it earns the switch on served traffic first
        stage(store, model_hash=ref.model_hash, name=ref.name, reason=decision.summary(),
              run_id=run_id)  # fmt: skip
        return PromotionResult("staged", store.champion(), rows.height)
    crash_point("promotion:verified")
    try:
        deployment = store.record_deployment(
            action="promote",
            model_hash=ref.model_hash,
            name=ref.name,
            data_version=splits.data_version,
            reason=decision.summary(),
            decision=decision.to_dict(),
            run_id=run_id,
            expected_previous=decision.champion_hash,
        )
    except ChampionChangedError as exc:
        if exc.current_hash == ref.model_hash:
            # A concurrent run (a sensor's retrain beside a manual run) promoted this
            # very model first: the outcome this run wanted already holds.
            return PromotionResult("unchanged", store.champion(), rows.height)
        raise PromotionError(
            f"another run made {str(exc.current_hash)[:12]} the champion while this run"
            f" decided for {ref.model_hash[:12]}; nothing was switched. Start a new run"
            " (`mllife run --job retrain`) to decide against the new champion"
        ) from exc
    return PromotionResult("promoted", deployment, rows.height)


def promote_model(model: str, *, config: ProjectConfig, store: Store, reason: str) -> Deployment:
    """Make a recorded model the champion by hand (``mllife promote``), gates bypassed.

    The artifact must load and match its recorded hash; the switch is one transaction.
    """
    if not reason.strip():
        raise PromotionError("a manual promotion needs a --reason, recorded in the history")
    try:
        row = store.resolve_model(model)
    except StoreError as exc:
        raise PromotionError(str(exc)) from None
    # loading verifies the artifact against its recorded hash
    load_model(ModelRef.from_row(row), artifacts_dir=config.artifacts_dir, store=store)
    current = store.champion()
    if current is not None and current.model_hash == row["model_hash"]:
        raise PromotionError(f"{row['name']} {row['model_hash'][:12]} is already the champion")
    crash_point("promotion:verified")
    return store.record_deployment(
        action="promote",
        model_hash=row["model_hash"],
        name=row["name"],
        data_version=row["data_version"],
        reason=f"manual: {reason}",
        decision={"manual": True, "reason": reason},
        run_id=None,
        expected_previous=current.model_hash if current else None,
        also=closing_rollout(
            row["model_hash"], reason=f"manual: {reason}", evidence=None, run_id=None
        ),  # fmt: skip
    )


def rollback(
    *, config: ProjectConfig, store: Store, reason: str, to: str | None = None
) -> Deployment:
    """Bring back an earlier champion (default: the one before the current).

    ``to`` is a model hash prefix or a deployment id like ``#3``. Only the target's
    artifact is needed (checked by hash); the current one may be gone.
    """
    if not reason.strip():
        raise PromotionError("a rollback needs a --reason, recorded in the history")
    current = store.champion()
    if current is None:
        raise PromotionError("nothing is deployed: there is nothing to roll back")
    if to is None:
        if current.previous_hash is None:
            raise PromotionError("the current champion is the first one: no earlier model")
        target_hash = current.previous_hash
    elif to.startswith("#"):
        past = store.deployment(int(to[1:])) if to[1:].isdigit() else None
        if past is None:
            raise PromotionError(f"no deployment {to} in the history (see `mllife status`)")
        target_hash = past.model_hash
    else:
        try:
            target_hash = store.resolve_model(to)["model_hash"]
        except StoreError as exc:
            raise PromotionError(str(exc)) from None
    if target_hash == current.model_hash:
        raise PromotionError(f"{target_hash[:12]} is already the champion")
    row = store.model_row(target_hash)
    # loading verifies the artifact against its recorded hash
    load_model(ModelRef.from_row(row), artifacts_dir=config.artifacts_dir, store=store)
    crash_point("rollback:verified")
    return store.record_deployment(
        action="rollback",
        model_hash=target_hash,
        name=row["name"],
        data_version=row["data_version"],
        reason=reason,
        decision={"rollback_from": current.model_hash, "reason": reason},
        run_id=None,
        expected_previous=current.model_hash,
    )
