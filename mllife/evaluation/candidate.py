"""Evaluate a saved model on validation rows and, for the chosen challenger only, on the
sealed test rows; record the results.

Every candidate is evaluated on validation, which chooses among them. The sealed test
set is read for the one candidate chosen (:func:`with_test`, called by the challenger
step): showing every candidate's test score invites choosing by it, which turns the
test set into a second validation set. ``mllife status --show-test`` reads it for all
of them on request, each read recorded."""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from mllife.config.project import ProjectConfig
from mllife.data.split import SplitSet
from mllife.evaluation.explain import keep_gallery_saliency, saliency_cache
from mllife.evaluation.prediction_cache import cached_test_proba, remember_test_proba
from mllife.metrics import Agreement, EvaluationReport, agreement, evaluate
from mllife.models.registry import ModelRef, load_model
from mllife.models.training import place_model
from mllife.preprocess.inputs import model_inputs, split_rows
from mllife.storage.store import Store

__all__ = [
    "CandidateEvaluation",
    "evaluate_candidate",
    "read_sealed_test",
    "record_test_read",
    "with_test",
]


@dataclass(frozen=True)
class CandidateEvaluation:
    ref: ModelRef
    validation: EvaluationReport
    #: None while sealed: only the chosen challenger is evaluated on test (with_test)
    test: EvaluationReport | None
    agreement: Agreement | None
    #: predictions on the validation rows, in split order (the champion check replays them)
    validation_predictions: tuple[str, ...]
    split_version: str
    #: predictions on the sealed test rows, in split order (the paired comparison with
    #: the champion reads them when the policy gates on test)
    test_predictions: tuple[str, ...] = ()
    #: the predicted class's probability per validation row (for the gallery)
    validation_confidence: tuple[float, ...] = ()


def read_sealed_test(
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store,
    model_hash: str,
    asset: str,
    run_id: str | None,
    preprocessor=None,
) -> tuple[pl.DataFrame, object]:
    """The test rows and their inputs (images through ``preprocessor``, streamed and
    cached, when given). Every call is recorded in ``test_reads``."""
    rows = split_rows(splits.rows, "test")
    inputs = model_inputs(rows, config=config, columns=splits.columns, preprocessor=preprocessor)
    record_test_read(store, splits, rows, model_hash=model_hash, asset=asset, run_id=run_id)
    return rows, inputs


def record_test_read(
    store: Store, splits: SplitSet, rows: pl.DataFrame, *, model_hash, asset, run_id
) -> None:
    """One read of the sealed test set (its ``rows``), in the audit log ``test_reads``."""
    store.record_test_read(
        split_version=splits.split_version,
        model_hash=model_hash,
        asset=asset,
        run_id=run_id,
        n_rows=rows.height,
    )


def _report(model, rows: pl.DataFrame, inputs) -> tuple[EvaluationReport, list, list]:
    return _report_from(model.classes, model.predict_proba(inputs), rows)


def _report_from(classes, proba, rows: pl.DataFrame) -> tuple[EvaluationReport, list, list]:
    predicted = [classes[i] for i in proba.argmax(axis=1)]
    report = evaluate(rows["label"].to_list(), predicted, proba=proba, labels=classes)
    return report, predicted, proba.max(axis=1).tolist()


def _confusion_rows(report: EvaluationReport) -> list[tuple[str, str, int]]:
    labels = report.labels
    cm = report.confusion
    return [
        (str(labels[i]), str(labels[j]), int(cm[i, j]))
        for i in range(len(labels))
        for j in range(len(labels))
        if cm[i, j]
    ]


def _placed(ref: ModelRef, config: ProjectConfig, store: Store):
    model = load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    place_model(model, config)  # the device, and the embedding cache training filled
    # images stream through the model's own preprocessing, from the pixel cache
    return model, model.preprocessor if config.data.kind == "images" else None


def evaluate_candidate(
    ref: ModelRef,
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store,
    run_id: str | None,
) -> CandidateEvaluation:
    """``ref`` on validation (the sealed test set waits for :func:`with_test`)."""
    model, pre = _placed(ref, config, store)
    val_rows = split_rows(splits.rows, "validation")
    val_inputs = model_inputs(val_rows, config=config, columns=splits.columns, preprocessor=pre)
    validation, val_pred, val_confidence = _report(model, val_rows, val_inputs)
    _record(store, ref, "validation", validation, splits.split_version, run_id)
    if config.data.kind == "images" and not config.candidate(ref.name).baseline:
        # the model is loaded here: the report's gallery shows what its errors leaned on
        keep_gallery_saliency(
            model, ref.model_hash, val_rows, tuple(val_pred), tuple(val_confidence),
            root=config.root, cache=saliency_cache(config),
        )  # fmt: skip
    return CandidateEvaluation(
        ref=ref,
        validation=validation,
        test=None,
        agreement=None,
        validation_predictions=tuple(val_pred),
        validation_confidence=tuple(val_confidence),
        split_version=splits.split_version,
    )


def with_test(
    evaluation: CandidateEvaluation,
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store,
    run_id: str | None,
    asset: str,
) -> CandidateEvaluation:
    """``evaluation`` with its sealed test report, predictions and val/test agreement:
    one recorded read of the test set under ``asset``. Probabilities the model gave on
    these very rows before are reused (``prediction_cache``), not predicted again."""
    ref = evaluation.ref
    rows = split_rows(splits.rows, "test")
    cached = cached_test_proba(config, ref.model_hash, splits, rows)
    if cached is None:
        model, pre = _placed(ref, config, store)
        rows, inputs = read_sealed_test(
            splits, config=config, store=store, model_hash=ref.model_hash, asset=asset,
            run_id=run_id, preprocessor=pre,
        )  # fmt: skip
        classes, proba = model.classes, model.predict_proba(inputs)
        remember_test_proba(config, ref.model_hash, splits, rows, classes, proba)
    else:
        record_test_read(store, splits, rows, model_hash=ref.model_hash, asset=asset, run_id=run_id)
        classes, proba = cached
    test, test_pred, _ = _report_from(classes, proba, rows)
    _record(store, ref, "test", test, splits.split_version, run_id)
    return replace(
        evaluation,
        test=test,
        agreement=agreement(
            evaluation.validation, test, tolerance=config.promotion.setting("max_val_test_gap")
        ),
        test_predictions=tuple(test_pred),
    )


def _record(store: Store, ref: ModelRef, split: str, report, split_version: str, run_id) -> None:
    store.record_evaluation(
        model_hash=ref.model_hash,
        split=split,
        split_version=split_version,
        metrics=dict(report.metrics),
        confusion=_confusion_rows(report),
        run_id=run_id,
    )
