"""Every private Dagster name the project uses, in this one module.

Dagster has no public Python API for launching a run from a workspace with an asset
selection or a re-execution (its own ``dagster job launch`` CLI has neither), for asking
a code server whether it still executes a run, for the daemon's pool-slot cleanup, or
for extending dagster-celery's executor. The project uses the same internals Dagster's
CLI, sensor daemon and dagster-celery use, and nowhere else: the other modules import
these names from here. A Dagster upgrade is checked here first.

Checked against: dagster 1.13.27, dagster-celery 0.29.27 (pyproject.toml pins
``dagster>=1.13,<1.14`` and the matching 0.29 libraries; ``requirements.lock`` the
exact versions the test suite passed on). The instance settings also name
``dagster._core.run_coordinator`` in ``dagster.yaml``, as Dagster's documentation for the
queued run coordinator does.
"""

from __future__ import annotations

import importlib

# launching from a workspace (assets/runtime/launch.py): what `dagster job launch` and the
# sensor daemon use; the origin a run created by the project's own run worker carries, so
# the UI re-executes it like a launched one (assets/runtime/local_launch.py)
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.errors import DagsterExecutionInterruptedError, DagsterUserCodeUnreachableError

# engine events and retries of the Celery executor (assets/executors/celery_executor.py)
from dagster._core.events import EngineEventData
from dagster._core.execution.plan.resume_retry import ReexecutionStrategy
from dagster._core.execution.retries import RetryMode
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import DefaultRunCoordinator
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget, WorkspaceFileTarget

# executing a run in a worker of the project's own (assets/runtime/run_worker.py): what
# `dagster api execute_run` and the code server's run worker do
from dagster._grpc.impl import core_execute_run
from dagster._utils.error import serializable_error_info_from_exc_info
from dagster._utils.interrupts import capture_interrupts

__all__ = [
    "DagsterExecutionInterruptedError",
    "DagsterUserCodeUnreachableError",
    "DefaultRunCoordinator",
    "EngineEventData",
    "JobSubsetSelector",
    "ModuleTarget",
    "ReconstructableRepository",
    "ReexecutionStrategy",
    "RemoteJobOrigin",
    "RemoteRepositoryOrigin",
    "RetryMode",
    "WorkspaceFileTarget",
    "WorkspaceProcessContext",
    "can_cancel_execution",
    "capture_interrupts",
    "concurrency_slots_iteration",
    "core_execute_run",
    "serializable_error_info_from_exc_info",
]  # and, through __getattr__, dagster-celery's names in _CELERY

#: dagster-celery's names: its execution loop, executor config and (private) task
#: submission, loaded when first asked for (the base install has no dagster-celery)
_CELERY = {
    "core_celery_execution_loop": (
        "dagster_celery.core_execution_loop",
        "core_celery_execution_loop",
    ),
    "CELERY_CONFIG": ("dagster_celery.executor", "CELERY_CONFIG"),
    "CeleryExecutor": ("dagster_celery.executor", "CeleryExecutor"),
    "submit_task": ("dagster_celery.executor", "_submit_task"),
}


def __getattr__(name: str):
    if name in _CELERY:
        module, attribute = _CELERY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def can_cancel_execution(instance, run_id: str) -> bool | None:
    """Whether the code server that launched ``run_id`` still executes it (the default
    run launcher's gRPC client, as its termination does); None when no code server
    launched it; False when that server is gone."""
    from dagster._grpc.types import CanCancelExecutionRequest, CanCancelExecutionResult
    from dagster._serdes import deserialize_value

    client = instance.run_launcher._get_grpc_client_for_termination(run_id)
    if client is None:
        return None
    try:
        answer = client.can_cancel_execution(CanCancelExecutionRequest(run_id=run_id), timeout=10)
    except DagsterUserCodeUnreachableError:
        return False  # the server is gone, and the run's worker was its child
    return deserialize_value(answer, CanCancelExecutionResult).can_cancel


def concurrency_slots_iteration(instance, logger):
    """The daemon's iteration that frees the pool slots of ended runs (imported only
    when called: the daemon package costs ~0.4 s to import). It reads nothing of the
    workspace but its instance."""
    from types import SimpleNamespace

    from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration

    return execute_concurrency_slots_iteration(SimpleNamespace(instance=instance), logger)
