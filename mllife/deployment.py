"""Challenger selection, comparison with the deployed champion, and promotion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mllife._errors import ArtifactError, PromotionError
from mllife.config import ProjectConfig
from mllife.evaluation import CandidateEvaluation
from mllife.inputs import model_inputs, split_rows
from mllife.metrics import Comparison, compare
from mllife.policy import Decision, decide
from mllife.registry import ModelRef, load_model
from mllife.split import SplitSet
from mllife.store import Deployment, Store

__all__ = [
    "Challenger",
    "champion_ref",
    "choose_challenger",
    "promote",
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
    return ModelRef(
        row["name"], row["kind"], row["model_hash"], row["artifact_path"], int(row["size_bytes"])
    )


def choose_challenger(
    evaluations: list[CandidateEvaluation],
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store,
) -> Challenger:
    """Pick the challenger and decide, against the champion on the same validation rows."""
    metric = config.promotion.selection_metric
    best, ranking = select_challenger(evaluations, metric=metric)
    current = champion_ref(store)
    comparison = None
    if current is not None and current.model_hash != best.ref.model_hash:
        champion = load_model(current, artifacts_dir=config.artifacts_dir, store=store)
        rows = split_rows(splits.rows, "validation")
        champion_pred = champion.predict(model_inputs(rows, config=config, columns=splits.columns))
        comparison = compare(
            rows["label"].to_list(),
            np.asarray(champion_pred, dtype=str),
            np.asarray(best.validation_predictions, dtype=str),
            labels=sorted(set(best.validation.labels) | set(champion.classes)),
        )
    decision = decide(
        policy=config.promotion,
        challenger_hash=best.ref.model_hash,
        validation_metrics=dict(best.validation.metrics),
        agreement=best.agreement,
        champion_hash=current.model_hash if current else None,
        comparison=comparison,
    )
    return Challenger(best, decision, comparison, ranking)


@dataclass(frozen=True)
class PromotionResult:
    action: str  # "promoted" or "unchanged"
    champion: Deployment
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
        raise PromotionError(f"refusing to promote: {decision.summary()}")
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
    return PromotionResult("promoted", deployment, rows.height)
