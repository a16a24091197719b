"""Training stage: one ``candidate_<name>`` asset per candidate in mllife.toml."""

import dagster as dg

from assets._metadata import frame_md
from assets.resources import MllifeProject
from mllife.config import CandidateConfig
from mllife.split import SplitSet
from mllife.training import TrainedCandidate, train_candidate


def build_candidate_asset(spec: CandidateConfig) -> dg.AssetsDefinition:
    target = spec.estimator if spec.kind == "sklearn" else spec.architecture

    @dg.asset(
        name=f"candidate_{spec.name}",
        group_name="training",
        kinds={"sklearn" if spec.kind == "sklearn" else "torch"},
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
            store=project.store,
            run_id=context.run.run_id,
            log=context.log.info,
        )
        import polars as pl

        return dg.Output(
            trained,
            data_version=dg.DataVersion(trained.ref.model_hash),
            metadata={
                "model_hash": trained.ref.model_hash,
                "artifact": dg.MetadataValue.path(
                    str(trained.ref.path(project.config.artifacts_dir))
                ),
                "size_bytes": trained.ref.size_bytes,
                "fit_seconds": round(trained.fit_seconds, 3),
                "params": dg.MetadataValue.json(dict(spec.params)),
                "history": frame_md(pl.DataFrame(trained.history)),
            },
        )

    return _candidate
