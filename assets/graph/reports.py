"""Reports stage: the status report (technical + client) as one HTML file."""

from functools import partial

import dagster as dg
import polars as pl

from assets.graph import pools
from assets.graph._metadata import frame_table
from assets.graph.resources import MllifeProject
from mllife.data.images import CleanData
from mllife.data.pii import pii_mask
from mllife.data.split import SplitSet
from mllife.evaluation.explain import saliency_cache, saliency_path
from mllife.evaluation.groups import grouped_rows
from mllife.evaluation.importance import (
    not_beneficial,
    previous_column_values,
    record_column_values,
    validation_column_values,
)
from mllife.evaluation.label_issues import LabelIssues
from mllife.evaluation.slices import record_slices, validation_slices
from mllife.evaluation.test_budget import sealed_set_wear
from mllife.models.registry import recorded_backbone
from mllife.monitoring.batch import BatchDrift, staleness
from mllife.monitoring.traffic import (
    served_quality,
    served_ratings,
    shadow_comparison,
    traffic_summary,
)
from mllife.preprocess.inputs import split_rows
from mllife.problems.registry import ProblemRegistry
from mllife.problems.scoring import ProblemScores
from mllife.promotion.challenger import Challenger
from mllife.promotion.deploy import PromotionResult
from mllife.promotion.policy import gate_descriptions
from mllife.promotion.rollout import rollout_history
from mllife.reporting.chart_cache import charts_kept_in
from mllife.reporting.fairness_section import fairness_section
from mllife.reporting.features_section import features_section
from mllife.reporting.gallery import gallery_section
from mllife.reporting.monitoring_section import monitoring_section
from mllife.reporting.problem_section import problem_section
from mllife.reporting.slices_section import slices_section
from mllife.reporting.staleness_section import staleness_section
from mllife.reporting.status import (
    DataFacts,
    StatusReport,
    describe_training,
    write_status_report,
)
from mllife.reporting.text_section import validation_text_section


def _sections(project: MllifeProject, splits, challenger, problem_scores, drift_report, action):
    """The report's gallery, known-problems, monitoring and per-group sections."""
    store, config = project.store, project.config
    best = challenger.evaluation
    gallery = gallery_section(
        split_rows(splits.rows, "validation"),
        best.validation_predictions,
        best.validation_confidence,
        root=config.root,
        kind=config.data.kind,
        features=list(splits.columns) if splits.columns else None,
        hidden=frozenset(config.data.pii),
        saliency=partial(saliency_path, saliency_cache(config), best.ref.model_hash),
    )
    problems = problem_section(
        ProblemRegistry(config, store),
        problem_scores,
        challenger_hash=best.ref.model_hash,
        champion_hash=challenger.decision.champion_hash,
    )
    monitoring = monitoring_section(
        drift_report,
        traffic=traffic_summary(store),
        quality=served_quality(store),
        ratings=served_ratings(store),
        shadow=shadow_comparison(store),
        age=staleness(config, store),
        first_champion=action == "promoted" and challenger.decision.first_run,
        deployed=store.champion() is not None,
    )
    fairness = None
    if config.fairness.groups:
        # a personal group shows as its keyed hash
        rows = grouped_rows(splits, "validation", config.fairness.groups, mask=pii_mask(config))
        fairness = fairness_section(rows, best.validation_predictions, config.fairness.groups)
    return {"gallery": gallery, "problems": problems, "monitoring": monitoring,
            "fairness": fairness}  # fmt: skip


def _column_values(project: MllifeProject, splits, challenger, run_id: str) -> tuple:
    """Tables: each column's value and cost for the challenger, recorded per run, as a
    report section and as a table for the asset's metadata."""
    store, config = project.store, project.config
    ref = challenger.evaluation.ref
    values = validation_column_values(ref, splits, config=config, store=store)
    flagged = not_beneficial(values, previous_column_values(store, run_id=run_id))
    record_column_values(store, run_id=run_id, model_hash=ref.model_hash, values=values)
    table = pl.DataFrame(
        [{"column": v.column, "importance": round(v.importance, 4), "low": round(v.low, 4),
          "high": round(v.high, 4), "width": v.width, "us_per_row": round(v.micros_per_row, 2),
          "not_beneficial": v.column in flagged} for v in values]
    )  # fmt: skip
    return features_section(values, flagged), frame_table(table)


def _slices(project: MllifeProject, splits, challenger, context) -> tuple:
    """The challenger's weak spots on validation, recorded per run (`mllife slices`), as
    a report section and the asset's metadata."""
    config, evaluation = project.config, challenger.evaluation
    found = validation_slices(config, splits, evaluation, store=project.store)
    record_slices(project.store, run_id=context.run.run_id, model_hash=evaluation.ref.model_hash,
                  found=found)  # fmt: skip
    shown = [{"slice": s.description, "rows": s.size, "accuracy": round(s.accuracy, 4),
              "rest": round(s.rest_accuracy, 4), "p": s.p_value} for s in found.slices]  # fmt: skip
    table = pl.DataFrame(shown) if shown else pl.DataFrame({"slice": [found.describe()]})
    section = slices_section(found, root=config.root, kind=config.data.kind)
    return section, frame_table(table)


def _data_facts(kind: str, splits: SplitSet, clean_data: CleanData, issues, root) -> DataFacts:
    return DataFacts(
        kind=kind,
        data_version=splits.data_version,
        n_inputs=clean_data.rows.height + clean_data.dropped.height,
        n_clean=clean_data.rows.height,
        split_sizes=splits.sizes(),
        dropped=clean_data.dropped,
        label_issues=issues,
        near_duplicates=splits.near_duplicates,
        root=root,
    )


def _training_notes(store, config, evaluations: dict) -> dict[str, str]:
    """How each candidate was trained, with where its pretrained backbone came from."""
    notes = {}
    for spec in config.models_to_train:
        evaluation = evaluations.get(f"evaluation_{spec.name}")
        backbone = evaluation and recorded_backbone(store, evaluation.ref.model_hash)
        notes[spec.name] = describe_training(spec, backbone)
    return notes


def build_status_report_asset(
    candidate_names: list[str], *, label_issues: bool = False, staleness: bool = False
) -> dg.AssetsDefinition:
    ins = {f"evaluation_{n}": dg.AssetIn() for n in candidate_names}
    if label_issues:  # [cleaning] label_issues: the search's result goes in the data section
        ins["label_issues"] = dg.AssetIn()
    if staleness:  # [data] time: quality against model age gets its section
        ins["staleness_backtest"] = dg.AssetIn()

    @dg.asset(
        # records each column's value for the challenger into the store (table projects)
        pool=pools.STORE,
        group_name="reports",
        kinds={"duckdb"},
        ins={
            **ins,
            "champion": dg.AssetIn(),
            "challenger": dg.AssetIn(),
            "splits": dg.AssetIn(),
            "clean_data": dg.AssetIn(),
            "problem_scores": dg.AssetIn(),
            "drift_report": dg.AssetIn(),
        },
        description="One self-contained HTML report per run: a plain-language status for"
        " the client and the technical report (leaderboard, gates, confusion, class bias,"
        " history across model versions, drift of new data and served inputs, served traffic"
        " and accuracy on served data).",
    )
    def status_report(
        context: dg.AssetExecutionContext,
        project: MllifeProject,
        champion: PromotionResult,
        challenger: Challenger,
        splits: SplitSet,
        clean_data: CleanData,
        problem_scores: ProblemScores,
        drift_report: dict[str, BatchDrift],
        **evaluations,
    ) -> dg.Output[StatusReport]:
        issues: LabelIssues | None = evaluations.pop("label_issues", None)
        backtest = evaluations.pop("staleness_backtest", None)
        store, config = project.store, project.config
        wear = sealed_set_wear(store, splits.split_version, config.promotion.max_test_reads)
        # charts whose inputs did not change since an earlier report are read back
        with charts_kept_in(config.state_dir / "cache" / "charts"):
            sections = _sections(
                project, splits, challenger, problem_scores, drift_report, champion.action
            )
            metadata = {}
            sections["slices"], metadata["slices"] = _slices(project, splits, challenger, context)
            if backtest is not None:
                sections["staleness"] = staleness_section(backtest)
            if config.data.kind == "table":
                sections["features"], metadata["column_values"] = _column_values(
                    project, splits, challenger, context.run.run_id
                )
                sections["texts"] = validation_text_section(
                    config, store, splits, challenger.evaluation
                )
            report = write_status_report(
                reports_dir=config.reports_dir,
                run_id=context.run.run_id,
                data=_data_facts(config.data.kind, splits, clean_data, issues, config.root),
                evaluations=list(evaluations.values()),
                challenger=challenger,
                action=champion.action,
                test_wear=wear,
                history=store.metric_history(split="validation", metric="accuracy"),
                deployments=store.deployments(),
                rollouts=rollout_history(store),
                gate_descriptions=gate_descriptions(config.promotion),
                training_notes=_training_notes(store, config, evaluations),
                **sections,
            )
        return dg.Output(
            report,
            metadata={
                "report": dg.MetadataValue.path(str(report.path)),
                "summary": dg.MetadataValue.md(report.markdown),
                **metadata,
            },
        )

    return status_report
