"""The challenger: the best candidate on validation, compared with the deployed
champion on the same rows of the gate split (the sealed test set unless the policy says
validation), and the policy's decision about it (recorded in the store, where serving's
shadow and canary rollout find it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mllife._errors import PromotionError
from mllife.config.project import ProjectConfig
from mllife.data.pii import pii_mask
from mllife.data.split import SplitSet
from mllife.evaluation.candidate import (
    CandidateEvaluation,
    read_sealed_test,
    record_test_read,
    with_test,
)
from mllife.evaluation.groups import group_quality, grouped_rows
from mllife.evaluation.latency import p95_latency_ms
from mllife.evaluation.prediction_cache import cached_test_proba
from mllife.metrics import Comparison, compare
from mllife.models.registry import champion_ref, load_model
from mllife.preprocess.inputs import model_inputs, split_rows
from mllife.promotion.policy import Decision, decide
from mllife.promotion.rollout import record_verdict
from mllife.storage.store import Store

__all__ = [
    "Challenger",
    "choose_challenger",
    "human_level",
    "record_challenger",
    "reevaluate",
    "select_challenger",
]


@dataclass(frozen=True)
class Challenger:
    evaluation: CandidateEvaluation
    decision: Decision
    comparison: Comparison | None
    #: every candidate's validation score on the selection metric, best first
    ranking: tuple[tuple[str, float], ...]
    #: what the gates read (``decide``'s arguments but the policy), so the policy can be
    #: evaluated again after an edit without retraining (see :func:`reevaluate`)
    evidence: dict = field(default_factory=dict)


def reevaluate(challenger: Challenger, policy) -> Decision:
    """The gates of ``policy`` (as edited now) on the evidence the challenger step
    gathered. A policy that chooses differently (another selection metric) or gates on
    another split needs the challenger step itself to run again: refused, saying so."""
    evidence = getattr(challenger, "evidence", None)
    if not evidence:
        raise PromotionError(
            "this challenger was recorded before its evidence was kept: run the challenger"
            " step again to evaluate the policy"
        )
    basis = evidence["basis"]
    now = {"selection_metric": policy.selection_metric, "gate_split": policy.gate_split}
    changed = [f"{k} {basis[k]!r} -> {v!r}" for k, v in now.items() if basis[k] != v]
    if changed:
        raise PromotionError(
            f"promotion.{', '.join(changed)}: the challenger was chosen and compared under"
            " the old setting; materialize `challenger` again to apply it"
        )
    arguments = {k: v for k, v in evidence.items() if k != "basis"}
    return decide(policy=policy, **arguments)


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


def human_level(config: ProjectConfig) -> float | None:
    """Human-level accuracy from the configured annotations, if any."""
    if config.annotations_path is None:
        return None
    from mllife.data.annotations import human_agreement, read_annotations

    return human_agreement(read_annotations(config.annotations_path)).human_accuracy


def _paired_comparison(
    best: CandidateEvaluation,
    current,
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store,
    run_id: str | None,
) -> Comparison:
    """Challenger versus champion on the same rows of the gate split. On the sealed test
    set the champion's predictions are one more recorded read; the challenger's come
    from its evaluation (already recorded)."""
    if config.promotion.gate_split == "test":
        rows = split_rows(splits.rows, "test")
        ours = best.test_predictions
        cached = cached_test_proba(config, current.model_hash, splits, rows)
        if cached is not None:  # the champion's own test read of an earlier run, reused
            record_test_read(store, splits, rows, model_hash=current.model_hash,
                             asset="challenger", run_id=run_id)  # fmt: skip
            classes, proba = cached
            theirs = [classes[i] for i in proba.argmax(axis=1)]
        else:
            champion = load_model(current, artifacts_dir=config.artifacts_dir, store=store)
            rows, inputs = read_sealed_test(
                splits, config=config, store=store, model_hash=current.model_hash,
                asset="challenger", run_id=run_id,
            )  # fmt: skip
            classes, theirs = champion.classes, champion.predict(inputs)
    else:
        champion = load_model(current, artifacts_dir=config.artifacts_dir, store=store)
        rows = split_rows(splits.rows, "validation")
        inputs = model_inputs(rows, config=config, columns=splits.columns)
        ours = best.validation_predictions
        classes, theirs = champion.classes, champion.predict(inputs)
    return compare(
        rows["label"].to_list(),
        np.asarray(theirs, dtype=str),
        np.asarray(ours, dtype=str),
        labels=sorted(set(best.validation.labels) | set(classes)),
    )


def _group_gaps(best: CandidateEvaluation, splits: SplitSet, config: ProjectConfig) -> dict:
    """Per ``[fairness] groups`` column, the challenger's largest accuracy gap between two
    groups on the gate split (the rows its absolute gates read)."""
    columns = config.fairness.groups
    if not columns:
        return {}
    split = config.promotion.gate_split
    rows = grouped_rows(splits, split, columns, mask=pii_mask(config))
    predicted = best.test_predictions if split == "test" else best.validation_predictions
    labels = rows["label"].to_list()
    return {c: group_quality(labels, predicted, rows[c].to_list())[1] for c in columns}


def _timed_latency(best: CandidateEvaluation, splits: SplitSet, *, config, store) -> float | None:
    """p95 single-prediction latency on validation inputs, only against a budget: 200+
    single predictions (and loading the model and the inputs) cost seconds every run."""
    if not config.promotion.max_p95_latency_ms:
        return None
    model = load_model(best.ref, artifacts_dir=config.artifacts_dir, store=store)
    rows = split_rows(splits.rows, "validation")
    return p95_latency_ms(model, model_inputs(rows, config=config, columns=splits.columns))


def choose_challenger(
    evaluations: list[CandidateEvaluation],
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store,
    problems=None,
    run_id: str | None = None,
) -> Challenger:
    """Pick the challenger on validation and decide, against the champion on the same
    rows of the gate split."""
    metric = config.promotion.selection_metric
    best, ranking = select_challenger(evaluations, metric=metric)
    if best.test is None:  # the one candidate whose sealed test read counts
        best = with_test(best, splits, config=config, store=store, run_id=run_id,
                         asset="challenger")  # fmt: skip
    baseline_names = {c.name for c in config.models_to_train if c.baseline}
    current = champion_ref(store)
    comparison = None
    if current is not None and current.model_hash != best.ref.model_hash:
        comparison = _paired_comparison(
            best, current, splits, config=config, store=store, run_id=run_id
        )
    evidence = dict(
        challenger_hash=best.ref.model_hash,
        validation=best.validation,
        test=best.test,
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
        latency_p95_ms=_timed_latency(best, splits, config=config, store=store),
        human_accuracy=human_level(config),
        problem_scores=problems.of(best.ref.model_hash) if problems else None,
        champion_problem_scores=(problems.of(current.model_hash) if problems and current else None),
        problem_minimums=problems.minimums if problems else None,
        group_gaps=_group_gaps(best, splits, config),
    )
    decision = decide(policy=config.promotion, **evidence)
    basis = {"selection_metric": metric, "gate_split": config.promotion.gate_split}
    return Challenger(best, decision, comparison, ranking, {**evidence, "basis": basis})


def record_challenger(store: Store, challenger: Challenger, *, run_id: str | None) -> None:
    """Remember the run's challenger and its verdict: serving's shadow and canary
    rollout pick the newest one up (``serving.rollout``); a refusal ends the model's
    rollout if it was staged."""
    ref = challenger.evaluation.ref
    record_verdict(
        store,
        model_hash=ref.model_hash,
        name=ref.name,
        passed=challenger.decision.passed,
        summary=challenger.decision.summary(),
        run_id=run_id,
    )
