"""The app of each process of `mllife serve --workers N`.

uvicorn starts the worker processes itself (spawned: nothing is inherited), so each one
imports this module by name, reads the project's config from the path in
``MLLIFE_SERVE_CONFIG``, sets the connection deadlines and builds its own app: its own
models, inference threads, micro-batches and log writer (segments have unique names, so
the processes never write the same file). The port is shared by the operating system.
"""

from __future__ import annotations

import os

from mllife.config.project import load_config
from mllife.serve._app import create_app
from mllife.serve._protocol import DeadlineHttpToolsProtocol

__all__ = ["CONFIG_ENV", "WorkerProtocol", "app_from_environment"]

CONFIG_ENV = "MLLIFE_SERVE_CONFIG"


class WorkerProtocol(DeadlineHttpToolsProtocol):
    """The deadlines of this worker process, set by :func:`app_from_environment`."""


def app_from_environment():
    config = load_config(os.environ[CONFIG_ENV])
    WorkerProtocol.header_timeout = config.serving.header_timeout_seconds
    WorkerProtocol.body_timeout = config.serving.body_timeout_seconds
    return create_app(config)
