"""The project resource: the validated mllife.toml and the store it names."""

import os
import re
import socket
from functools import cached_property

import dagster as dg

from mllife._errors import ConfigError
from mllife.config.project import ProjectConfig, load_config
from mllife.storage.files import sha256_of
from mllife.storage.inbox import PostingRecorder, StoreInbox, ingest_inbox
from mllife.storage.store import Store

#: the sha256 of mllife.toml when `mllife run` submitted the run (and its re-executions)
CONFIG_DIGEST_TAG = "mllife/config_sha256"
#: team profile: the data version the submitter pinned and pushed (``storage.team_data``)
DATA_PIN_TAG = "mllife/data_dvc"


class MllifeProject(dg.ConfigurableResource):
    """Where the project's ``mllife.toml`` is; everything else is derived from it."""

    config_path: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Refuse to run a step against a config other than the one the run was
        submitted with: its graph and plan were built from that file."""
        run = context.run  # None when the resource is built outside a run
        submitted = run.tags.get(CONFIG_DIGEST_TAG) if run is not None else None
        if submitted is not None and sha256_of(self.config.path) != submitted:
            raise ConfigError(
                f"{self.config.path} changed while run {run.run_id} was using it; start a"
                " new run to use the edited configuration"
            )
        pin = run.tags.get(DATA_PIN_TAG) if run is not None else None
        if pin is not None and self.config.team_storage is not None:
            from mllife.storage.team_data import align_data

            if align_data(self.config, pin, remote=self.config.versioning.remote or ""):
                context.log.info(f"pulled the run's data version into {self.config.root}")

    @cached_property
    def config(self) -> ProjectConfig:
        return load_config(self.config_path)

    @cached_property
    def store(self) -> Store:
        """The metrics store; on team storage, with what training workers posted to its
        inbox ingested first, so this step reads their models and trials."""
        store = Store(self.config.store_path)
        if self.config.team_storage is not None:
            ingest_inbox(store, self.inbox)
        return store

    @property
    def inbox(self) -> StoreInbox:
        return StoreInbox(self.config.shared_dir / "inbox")

    @cached_property
    def model_records(self) -> Store | PostingRecorder:
        """Where a training step records its model and trials: the store, or on team
        storage the inbox (a training worker may be on a host that must not open the
        DuckDB file: its lock does not hold across hosts)."""
        if self.config.team_storage is None:
            return self.store
        writer = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{socket.gethostname()}-{os.getpid()}")
        return PostingRecorder(self.inbox, writer=writer[:64])
