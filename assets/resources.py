"""The project resource: the validated mllife.toml and the store it names."""

from functools import cached_property

import dagster as dg

from mllife._errors import ConfigError
from mllife.config.project import ProjectConfig, load_config
from mllife.storage.files import sha256_of
from mllife.storage.store import Store

#: the sha256 of mllife.toml when `mllife run` submitted the run (and its re-executions)
CONFIG_DIGEST_TAG = "mllife/config_sha256"


class MllifeProject(dg.ConfigurableResource):
    """Where the project's ``mllife.toml`` is; everything else is derived from it."""

    config_path: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Refuse to run a step against a config other than the one the run was
        submitted with: its graph and plan were built from that file."""
        run = context.dagster_run
        submitted = run.tags.get(CONFIG_DIGEST_TAG) if run is not None else None
        if submitted is not None and sha256_of(self.config.path) != submitted:
            raise ConfigError(
                f"{self.config.path} changed while run {run.run_id} was using it; start a"
                " new run to use the edited configuration"
            )

    @cached_property
    def config(self) -> ProjectConfig:
        return load_config(self.config_path)

    @cached_property
    def store(self) -> Store:
        return Store(self.config.store_path)
