"""Evaluation stage: ``evaluation_<name>`` per candidate on validation, with its baseline
check (the sealed test set is read by the challenger step, for the chosen one only)."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from assets.graph import pools
from assets.graph._metadata import frame_table, png
from assets.graph.resources import MllifeProject
from mllife.config.project import CandidateConfig
from mllife.data.split import SplitSet
from mllife.evaluation.candidate import CandidateEvaluation, evaluate_candidate
from mllife.evaluation.staleness import StalenessBacktest, project_backtest
from mllife.models.training import TrainedCandidate
from mllife.promotion.challenger import Challenger


def _check_specs(spec: CandidateConfig, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    if spec.baseline:  # a baseline is the floor, not expected to reach the bar
        return []
    return [
        dg.AssetCheckSpec(
            "accuracy_baseline",
            asset=key,
            description="Validation accuracy reaches promotion.min_accuracy (without"
            " it: beats always answering the largest class).",
        )
    ]


def _metadata(spec: CandidateConfig, result: CandidateEvaluation) -> dict:
    # validation only: the sealed test set is read for the chosen challenger alone
    return {
        "model_hash": result.ref.model_hash,
        "validation_accuracy": result.validation.accuracy,
        "validation_macro_f1": result.validation.macro_f1,
        "validation": dg.MetadataValue.md(result.validation.to_markdown()),
        "confusion_validation": png(
            result.validation.plot_confusion(title=f"{spec.name}: validation"),
            "confusion matrix",
        ),
        "test": "sealed: read only for the chosen challenger (see the challenger asset)",
    }


def _accuracy_floor(min_accuracy: float | None, splits: SplitSet) -> tuple[float, str]:
    """[promotion] min_accuracy, or without it the validation share of the largest
    class: a model must at least beat always answering the most common class."""
    if min_accuracy is not None:
        return min_accuracy, "[promotion] min_accuracy"
    labels = splits.rows.filter(pl.col("split") == "validation")["label"]
    share = labels.value_counts()["count"].max() / max(labels.len(), 1)
    return float(share), "share of the largest class (no [promotion] min_accuracy)"


def _checks(spec: CandidateConfig, result: CandidateEvaluation, floor: tuple[float, str]):
    if not spec.baseline:
        baseline, meaning = floor
        yield dg.AssetCheckResult(
            check_name="accuracy_baseline",
            passed=result.validation.accuracy >= baseline,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "validation_accuracy": result.validation.accuracy,
                "baseline": baseline,
                "baseline_is": meaning,
                "summary": f"validation accuracy {result.validation.accuracy:.4f}"
                f" {'>=' if result.validation.accuracy >= baseline else '<'} {baseline:.4f}"
                f" ({meaning})",
            },
        )


def build_evaluation_asset(spec: CandidateConfig) -> dg.AssetsDefinition:
    name = f"evaluation_{spec.name}"

    @dg.asset(
        name=name,
        group_name="evaluation",
        kinds={"duckdb"},
        ins={"candidate": dg.AssetIn(f"candidate_{spec.name}"), "splits": dg.AssetIn()},
        check_specs=_check_specs(spec, dg.AssetKey(name)),
        description=f"Candidate '{spec.name}' on validation: metrics with bootstrap"
        " intervals, per class, class bias, confusion matrix. Values go to the store. The"
        " sealed test set is read only for the chosen challenger.",
    )
    def _evaluation(
        context: dg.AssetExecutionContext,
        project: MllifeProject,
        candidate: TrainedCandidate,
        splits: SplitSet,
    ) -> Iterator:
        result = evaluate_candidate(
            candidate.ref,
            splits,
            config=project.config,
            store=project.store,
            run_id=context.run.run_id,
        )
        context.log.info(f"{name} validation: {result.validation.summary()}")
        yield dg.Output(result, metadata=_metadata(spec, result))
        floor = _accuracy_floor(project.config.promotion.min_accuracy, splits)
        yield from _checks(spec, result, floor)

    return _evaluation


@dg.asset(
    pool=pools.STORE,  # records the suggested age limit in the store
    group_name="evaluation",
    kinds={"scikit-learn"},
    description="How fast a model goes stale ([data] time): trained on the rows up to a cut"
    " and scored on later windows (train and validation rows only), accuracy against model"
    " age and the age where it falls beyond chance: the suggested champion age limit.",
)
def staleness_backtest(
    project: MllifeProject, splits: SplitSet, challenger: Challenger
) -> dg.Output[StalenessBacktest]:
    config = project.config
    found = project_backtest(config, splits, config.candidate(challenger.evaluation.ref.name))
    project.store.record_data_finding(
        split_version=splits.split_version,
        finding="staleness_limit_days",
        count=None if found.suggested_days is None else int(round(found.suggested_days)),
        summary=found.describe(),
    )
    points = pl.DataFrame(
        [{"from_days": round(p.start_days, 1), "to_days": round(p.end_days, 1), "rows": p.n,
          "accuracy": round(p.accuracy, 4), "low": round(p.low, 4), "high": round(p.high, 4)}
         for p in found.points]
    ) if found.points else pl.DataFrame({"reason": [found.describe()]})  # fmt: skip
    return dg.Output(
        found,
        metadata={
            "summary": found.describe(),
            "by_age": frame_table(points),
            "suggested_limit_days": found.suggested_days or 0.0,
        },  # fmt: skip
    )
