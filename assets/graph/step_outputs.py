"""Where asset values live between steps: one folder per run, written atomically.

Dagster's default filesystem IO manager keeps one file per asset key, so two runs at
once (a sensor's retrain and a manual run) overwrite each other's splits and models,
and a reader can see half a pickle. Here every run writes under its own id, a value
appears only whole, and a step loads its inputs from the run that produced them:
this run, the run a re-execution resumes, or -- for an asset picked alone in the UI --
that asset's latest materialization.

The base is a folder or, for the team profile, any fsspec URL (``[team] step_outputs``:
``s3://bucket/prefix``...), through ``universal_pathlib`` as Dagster's own
``UPathIOManager`` does. A local value appears by rename; an object store makes an
object visible only whole; elsewhere (sftp...) a value is written aside and renamed.

Each pickle is signed (HMAC-SHA256, key in ``.mllife/storage.key`` or, for the team
profile, beside the outputs on ``[team] storage``; never in git) and
its signature checked before it is unpickled, so a file swapped into the storage
folder is refused rather than run. Model artifacts themselves are loaded through
``mllife.models.registry``, which checks their hashes against the store.
"""

import pickle
import uuid
from pathlib import Path

import dagster as dg
from upath import UPath

from mllife._errors import ArtifactError
from mllife.config.project import ProjectConfig
from mllife.storage.files import write_atomically
from mllife.storage.pickles import loads as legacy_loads
from mllife.storage.signing import sign, unsign


def for_project(config: ProjectConfig) -> "RunScopedIOManager":
    return RunScopedIOManager(
        base_dir=config.steps_url,
        key_path=str(config.shared_dir / "storage.key"),
    )


def _signed_as(run_id: str, asset_key: dg.AssetKey) -> str:
    """What a step output's signature binds: the asset and the run that wrote it."""
    return f"asset {asset_key.to_user_string()} of run {run_id}"


def _is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


#: object stores, where a PUT makes an object visible only whole (no rename needed)
_WHOLE_PUTS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})


class RunScopedIOManager(dg.ConfigurableIOManager):
    """Pickles each asset value, signed, to ``<base_dir>/<run_id>/<asset_key>``;
    ``base_dir`` is a folder or an fsspec URL."""

    base_dir: str

    key_path: str

    def path_for(self, run_id: str, asset_key: dg.AssetKey) -> UPath:
        return UPath(self.base_dir) / run_id / "__".join(asset_key.path)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return  # nothing to pass on (checks-only or observation steps)
        path = self.path_for(context.run_id, context.asset_key)
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        signed = sign(
            payload,
            key_path=Path(self.key_path),
            context=_signed_as(context.run_id, context.asset_key),
        )
        if _is_local(path):
            write_atomically(Path(path.path), signed)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.protocol in _WHOLE_PUTS:
            path.write_bytes(signed)
            return
        staged = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # sftp, smb...
        staged.write_bytes(signed)
        staged.rename(path)

    def _load(self, run_id: str, asset_key: dg.AssetKey):
        # pickles of the old layout load too
        return legacy_loads(self._verified_bytes(run_id, asset_key))

    def load_input(self, context: dg.InputContext):
        key = context.asset_key
        candidates = []
        upstream = context.upstream_output
        if upstream is not None:
            try:
                candidates.append(upstream.run_id)
            except dg.DagsterInvariantViolationError:
                pass  # not produced by a step of this run's plan
        latest = context.instance.get_latest_materialization_event(key)
        if latest is not None:
            candidates.append(latest.run_id)
        for run_id in candidates:
            if self.path_for(run_id, key).is_file():
                try:
                    return self._load(run_id, key)
                except ArtifactError as exc:
                    raise dg.Failure(str(exc)) from None
        raise dg.Failure(
            f"no stored value of asset {key.to_user_string()} (looked in runs"
            f" {', '.join(candidates) or 'none'} under {self.base_dir}): materialize"
            f" {key.to_user_string()} in this instance first"
        )

    def unusable(self, run_id: str, asset_key: dg.AssetKey) -> str | None:
        """Why ``run_id``'s stored value of ``asset_key`` cannot be loaded (gone, or its
        signature fails), or None (a run about to reuse it checks first)."""
        path = self.path_for(run_id, asset_key)
        if not path.is_file():
            return f"its stored result ({path}) is gone"
        try:
            self._verified_bytes(run_id, asset_key)
        except ArtifactError:
            return f"its stored result ({path}) fails its signature"
        return None

    def _verified_bytes(self, run_id: str, asset_key: dg.AssetKey) -> bytes:
        """The stored pickle, its signature (key, asset and run) checked first."""
        path = self.path_for(run_id, asset_key)
        return unsign(
            path.read_bytes(),
            key_path=Path(self.key_path),
            what=f"stored step output {path}",
            context=_signed_as(run_id, asset_key),
        )

    def load_value(self, run_id: str, asset_key: str):
        """The value ``run_id`` materialized for ``asset_key`` (for run summaries)."""
        return self._load(run_id, dg.AssetKey(asset_key))
