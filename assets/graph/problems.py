"""Known problems: every model version scored on every pattern, with history."""

import dagster as dg
import polars as pl

from assets.graph import pools
from assets.graph._metadata import frame_table, png
from assets.graph.acceptance import PROBLEMS_VERSION_TAG
from assets.graph.resources import MllifeProject
from mllife._errors import ProblemError
from mllife.data.split import SplitSet
from mllife.models.training import TrainedCandidate, class_names
from mllife.problems.fingerprint import problems_version
from mllife.problems.registry import ProblemRegistry
from mllife.problems.scoring import ProblemScores, score_all
from mllife.reporting.plots import problem_history_png


@dg.asset_check(
    asset="splits",
    blocking=True,
    description="The repository's known problems (problems/<name>/problem.toml) fit this"
    " project: readable, a pattern kind for its data (file or row), expected labels among"
    " its classes. Checked before any training, so a problem that does not fit stops the"
    " run before it costs anything (and nothing of it is registered).",
)
def problem_files(project: MllifeProject, splits: SplitSet) -> dg.AssetCheckResult:
    config = project.config
    if not config.problems_dir.is_dir():
        return dg.AssetCheckResult(passed=True, metadata={"summary": "no problems folder"})
    registry = ProblemRegistry(config, project.store)
    try:
        problems, patterns = registry.read_problem_files(
            config.problems_dir, classes=class_names(config, splits)
        )
    except ProblemError as exc:
        return dg.AssetCheckResult(passed=False, metadata={"summary": str(exc)})
    return dg.AssetCheckResult(
        passed=True,
        metadata={"summary": f"{len(problems)} problem(s), {len(patterns)} pattern(s) fit"},
    )


def build_problem_scores_asset(candidate_names: list[str]) -> dg.AssetsDefinition:
    ins = {f"candidate_{n}": dg.AssetIn() for n in candidate_names}

    @dg.asset(
        pool=pools.STORE,
        group_name="evaluation",
        kinds={"duckdb"},
        ins={**ins, "splits": dg.AssetIn()},
        description="Every known problem (problems/<name>/problem.toml and those added with"
        " `mllife problems`) scored on the new candidates and every earlier model version"
        " that still loads. Results are cached per (model, pattern): only new pairs cost.",
    )
    def problem_scores(
        context: dg.AssetExecutionContext,
        project: MllifeProject,
        splits: SplitSet,
        **candidates: TrainedCandidate,
    ) -> dg.Output[ProblemScores]:
        config = project.config
        result = score_all(
            config,
            project.store,
            new_models=[c.ref for c in candidates.values()],
            classes=class_names(config, splits),
        )
        for model_hash, why in result.skipped:
            context.log.warning(f"model {model_hash[:12]} not scored: {why}")
        rows = [
            {
                "candidate": c.ref.name,
                **{k: round(v, 3) for k, v in result.of(c.ref.model_hash).items()},
            }
            for c in candidates.values()
        ]
        metadata = {
            "new_pairs_scored": result.new_pairs,
            "patterns_added_from_files": result.patterns_added,
            "models_skipped": len(result.skipped),
            "scores": frame_table(pl.DataFrame(rows)) if rows else "no candidates",
        }
        chart = problem_history_png(result.history)
        if chart:
            metadata["history"] = png(chart, "error rate per known problem by model version")
        # what the problems were when scored: an addition or edit since makes this stale
        version = problems_version(config, project.store)
        metadata["problems_version"] = version
        return dg.Output(result, metadata=metadata, tags={PROBLEMS_VERSION_TAG: version})

    return problem_scores
