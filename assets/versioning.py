"""Versioning: the run's artifacts (models, split manifests) into DVC."""

import dagster as dg

from assets import pools
from assets._metadata import versioned_output
from assets.resources import MllifeProject
from mllife.storage.artifacts import TrackResult, track_artifacts


@dg.asset(
    pool=pools.DVC,
    group_name="deployment",
    kinds={"dvc"},
    deps=["status_report"],
    description="`dvc add artifacts/`: every model and split manifest, content-"
    "addressed, pinned in artifacts.dvc (`mllife checkout HASH` restores any model"
    " from it). With [versioning] push = true, also `dvc push`; a failed push is a warning:"
    " the run's results are safe locally.",
)
def artifact_versions(project: MllifeProject) -> dg.Output[TrackResult]:
    settings = project.config.versioning
    result = track_artifacts(
        project.config, push_to=(settings.remote or "") if settings.push else None
    )
    metadata = {"dvc_seconds": result.seconds, "pushed": result.pushed}
    if result.version is None:
        storage = project.config.team_storage
        metadata["summary"] = (
            "not a DVC repository: artifacts are not tracked"
            if storage is None
            else f"team storage: artifacts are content-addressed in {storage}, not DVC-tracked"
        )
        return dg.Output(result, metadata=metadata)
    metadata["artifacts_version"] = result.version.md5
    metadata["files"] = result.version.nfiles
    if result.warning:
        metadata["warning"] = result.warning
    return versioned_output(result, result.version.md5, metadata=metadata)
