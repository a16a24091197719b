"""The project resource: the validated mllife.toml and the store it names."""

from functools import cached_property

import dagster as dg

from mllife.config.project import ProjectConfig, load_config
from mllife.storage.store import Store


class MllifeProject(dg.ConfigurableResource):
    """Where the project's ``mllife.toml`` is; everything else is derived from it."""

    config_path: str

    @cached_property
    def config(self) -> ProjectConfig:
        return load_config(self.config_path)

    @cached_property
    def store(self) -> Store:
        return Store(self.config.store_path)
