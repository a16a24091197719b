"""Training stage: one ``candidate_<name>`` asset per candidate in mllife.toml."""

import dagster as dg

from assets.graph._metadata import frame_table, versioned_output
from assets.graph.resources import MllifeProject
from mllife.config.project import CandidateConfig
from mllife.data.split import SplitSet
from mllife.models.training import TrainedCandidate, train_candidate


def trials_frame(trained: TrainedCandidate):
    """Every trial, best first, for the asset metadata."""
    import json

    import polars as pl

    rows = [
        {
            "trial": t.index,
            "status": t.status,
            trained.search_metric: None if t.score is None else round(t.score, 4),
            "seconds": round(t.seconds, 2),
            "params": json.dumps(t.params, sort_keys=True),
            "error": t.error or "",
        }
        for t in trained.trials
    ]
    return pl.DataFrame(rows).sort(trained.search_metric, descending=True, nulls_last=True)


def build_candidate_asset(
    spec: CandidateConfig, *, op_tags: dict | None = None
) -> dg.AssetsDefinition:
    target = spec.estimator if spec.kind == "sklearn" else spec.architecture

    @dg.asset(
        name=f"candidate_{spec.name}",
        group_name="training",
        kinds={"sklearn" if spec.kind == "sklearn" else "torch"},
        op_tags=op_tags,
        description=f"Candidate '{spec.name}': {spec.kind} {target} trained on the train"
        " split (validation for early stopping); the artifact is saved under its sha256.",
    )
    def _candidate(
        context: dg.AssetExecutionContext, project: MllifeProject, splits: SplitSet
    ) -> dg.Output[TrainedCandidate]:
        trained = train_candidate(
            spec,
            splits,
            config=project.config,
            store=project.model_records,
            run_id=context.run.run_id,
            log=context.log.info,
            # checkpoints belong to this run and to the re-executions that resume it
            lineage=context.run.root_run_id or context.run.run_id,
        )
        import polars as pl

        return versioned_output(
            trained,
            trained.ref.model_hash,
            metadata={
                "model_hash": trained.ref.model_hash,
                "artifact": dg.MetadataValue.path(
                    str(trained.ref.path(project.config.artifacts_dir))
                ),
                "size_bytes": trained.ref.size_bytes,
                "fit_seconds": round(trained.fit_seconds, 3),
                "best_params": dg.MetadataValue.json(trained.best_params),
                "search_metric": trained.search_metric,
                "trials": frame_table(trials_frame(trained)),
                "history": frame_table(pl.DataFrame(trained.history)),
            },
        )

    return _candidate
