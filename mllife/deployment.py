"""Challenger selection, comparison with the deployed champion, and promotion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mllife._errors import ArtifactError, ChampionChangedError, PromotionError, StoreError
from mllife._faults import crash_point
from mllife.config import ProjectConfig
from mllife.evaluation import CandidateEvaluation
from mllife.inputs import model_inputs, split_rows
from mllife.latency import p95_latency_ms
from mllife.metrics import Comparison, compare
from mllife.policy import Decision, decide
from mllife.registry import ModelRef, load_model
from mllife.split import SplitSet
from mllife.store import Deployment, Store

__all__ = [
    "Challenger",
    "promote_model",
    "rollback",
    "champion_ref",
    "choose_challenger",
    "promote",
    "record_challenger",
    "select_challenger",
]


@dataclass(frozen=True)
class Challenger:
    evaluation: CandidateEvaluation
    decision: Decision
    comparison: Comparison | None
    #: every candidate's validation score on the selection metric, best first
    ranking: tuple[tuple[str, float], ...]


def select_challenger(
    evaluations: list[CandidateEvaluation], *, metric: str
) -> tuple[CandidateEvaluation, tuple[tuple[str, float], ...]]:
    """The best candidate on the *validation* split (the test split never picks).

    Ties go to the smaller artifact: a simpler model is not worse.
    """
    if not evaluations:
        raise PromotionError("no evaluated candidates to choose a challenger from")
    ranked = sorted(
        evaluations,
        key=lambda e: (-e.validation.metrics[metric], e.ref.size_bytes, e.ref.name),
    )
    return ranked[0], tuple((e.ref.name, e.validation.metrics[metric]) for e in ranked)


def champion_ref(store: Store) -> ModelRef | None:
    """The deployed champion's artifact reference, or None before the first promotion."""
    current = store.champion()
    if current is None:
        return None
    row = store.model_row(current.model_hash)
    if row is None:
        raise ArtifactError(
            f"the champion {current.model_hash[:12]} has no row in the store's models table;"
            " the store is inconsistent: restore it from a backup"
        )
    return ModelRef.from_row(row)


def human_level(config: ProjectConfig) -> float | None:
    """Human-level accuracy from the configured annotations, if any."""
    if config.annotations_path is None:
        return None
    from mllife.annotations import human_agreement, read_annotations

    return human_agreement(read_annotations(config.annotations_path)).human_accuracy


def choose_challenger(
    evaluations: list[CandidateEvaluation],
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store,
    problems=None,
) -> Challenger:
    """Pick the challenger and decide, against the champion on the same validation rows."""
    metric = config.promotion.selection_metric
    best, ranking = select_challenger(evaluations, metric=metric)
    baseline_names = {c.name for c in config.candidates if c.baseline}
    rows = split_rows(splits.rows, "validation")
    inputs = model_inputs(rows, config=config, columns=splits.columns)
    current = champion_ref(store)
    comparison = None
    if current is not None and current.model_hash != best.ref.model_hash:
        champion = load_model(current, artifacts_dir=config.artifacts_dir, store=store)
        champion_pred = champion.predict(inputs)
        comparison = compare(
            rows["label"].to_list(),
            np.asarray(champion_pred, dtype=str),
            np.asarray(best.validation_predictions, dtype=str),
            labels=sorted(set(best.validation.labels) | set(champion.classes)),
        )
    model = load_model(best.ref, artifacts_dir=config.artifacts_dir, store=store)
    decision = decide(
        policy=config.promotion,
        challenger_hash=best.ref.model_hash,
        validation=best.validation,
        agreement=best.agreement,
        champion_hash=current.model_hash if current else None,
        comparison=comparison,
        challenger_is_baseline=best.ref.name in baseline_names,
        baseline_scores={
            e.ref.name: e.validation.metrics[metric]
            for e in evaluations
            if e.ref.name in baseline_names
        },
        artifact_bytes=best.ref.size_bytes,
        latency_p95_ms=p95_latency_ms(model, inputs),
        human_accuracy=human_level(config),
        problem_scores=problems.of(best.ref.model_hash) if problems else None,
        champion_problem_scores=(problems.of(current.model_hash) if problems and current else None),
        problem_minimums=problems.minimums if problems else None,
    )
    return Challenger(best, decision, comparison, ranking)


def record_challenger(store: Store, challenger: Challenger, *, run_id: str | None) -> None:
    """Remember the run's challenger and its verdict: serving's shadow and canary
    rollout pick the newest one up (``serving.rollout``)."""
    from datetime import UTC, datetime

    ref = challenger.evaluation.ref
    with store.writing() as conn:
        conn.execute(
            "INSERT INTO challengers VALUES (?, ?, ?, ?, ?, ?)",
            [
                run_id,
                ref.model_hash,
                ref.name,
                challenger.decision.passed,
                challenger.decision.summary(),
                datetime.now(UTC).replace(tzinfo=None),
            ],
        )


@dataclass(frozen=True)
class PromotionResult:
    #: "promoted", "unchanged" (already champion) or "not promoted" (a gate refused)
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
    if decision.already_champion:
        current = store.champion()
        return PromotionResult("unchanged", current, rows.height)
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
