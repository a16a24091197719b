"""Versioning: the run's artifacts (models, split manifests) into DVC."""

import dagster as dg

from assets.graph import pools
from assets.graph._metadata import versioned_output
from assets.graph.resources import MllifeProject
from mllife.storage.artifacts import TrackResult, track_artifacts


@dg.asset(
    pool=pools.DVC,
    group_name="deployment",
    kinds={"dvc"},
    deps=["status_report"],
    description="`dvc add artifacts/`: every model and split manifest, content-"
    "addressed, pinned in artifacts.dvc (`mllife checkout HASH` restores any model"
    " from it). With [versioning] push = true, also `dvc push`; a failed push is a warning:"
    " the run's results are safe locally. On team storage, with push = true, the shared"
    " artifacts go straight to the DVC remote (`dvc add --to-remote`).",
)
def artifact_versions(project: MllifeProject) -> dg.Output[TrackResult]:
    settings = project.config.versioning
    result = track_artifacts(
        project.config, push_to=(settings.remote or "") if settings.push else None
    )
    metadata = {"dvc_seconds": result.seconds, "pushed": result.pushed}
    if result.warning:
        metadata["warning"] = result.warning
    if result.version is None:
        metadata["summary"] = _why_untracked(project.config, result)
        return dg.Output(result, metadata=metadata)
    metadata["artifacts_version"] = result.version.md5
    metadata["files"] = result.version.nfiles
    return versioned_output(result, result.version.md5, metadata=metadata)


def _why_untracked(config, result: TrackResult) -> str:
    storage = config.team_storage
    if result.warning:
        return f"the DVC push failed; artifacts stay content-addressed in {storage}"
    if storage is not None and not config.versioning.push:
        return (
            f"team storage: artifacts are content-addressed in {storage}; set [versioning]"
            " remote and push = true to version them in a DVC remote"
        )
    return "not a DVC repository: artifacts are not tracked"
