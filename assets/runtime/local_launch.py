"""Runs executed by a run worker of the command's own (``assets.runtime.run_worker``),
for an instance that launches runs at once on this machine (Dagster's default run
coordinator and launcher: the local profile).

The run is an ordinary instance run: created with the project's code location as its
origin (the UI lists it under the job and re-executes it from failure), its events in the
instance's event log, its steps holding the instance's pool slots. What differs from the
code server's launcher is only who starts the worker and when: here it starts before the
run exists and loads the graph while the command plans, which saves the code server's
start and a second process start (~3 s on 2 cores) on every run. Runs the instance
queues, or launches elsewhere, and re-executions go through the code server
(``assets.runtime.launch``).

The worker runs in its own session: Ctrl-C reaches the command, which marks the run
canceling first and then interrupts the worker, so Dagster records it as canceled; a
Terminate in the UI marks it canceling, which the command sees and passes on the same
way. A worker that dies (SIGKILL, out of memory) is reported as the run's failure, with
its exit signal, by the command following it; a run whose command and worker are both
gone is marked failed by the next ``mllife run`` (``worker_gone``).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psutil

from assets.dagster_private import (
    DefaultRunCoordinator,
    ModuleTarget,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
    WorkspaceFileTarget,
)
from assets.runtime.run_worker import DEFINITIONS, reconstructable_repository
from mllife._errors import MllifeError

__all__ = ["LocalLocation", "local_location", "run_worker", "runs_locally", "worker_gone"]

#: where a run's worker runs: "host:pid:start time", for telling a dead one
WORKER_TAG = "mllife/run_worker"


def _code_location_origin(root: Path):
    """The code location the UI knows the project by (workspace.yaml's, or what
    ``mllife init`` writes into it), when it is the project's own graph."""
    workspace_file = root / "workspace.yaml"
    if workspace_file.is_file():
        target = WorkspaceFileTarget(paths=[str(workspace_file)])
    else:
        module = DEFINITIONS[0]
        target = ModuleTarget(
            module_name=module, attribute=None, working_directory=str(root), location_name=module
        )
    origins = target.create_origins()
    if len(origins) != 1:
        return None
    loadable = getattr(origins[0], "loadable_target_origin", None)
    if loadable is None or loadable.module_name != DEFINITIONS[0]:
        return None
    return origins[0]


def runs_locally(instance: dg.DagsterInstance, root: Path, executor: str) -> bool:
    """Whether a run of this project on this instance is started by a worker of the
    command's own: the instance launches at once and in place (no queue, no other
    launcher), the executor is not Celery, and the workspace is the project's graph."""
    return (
        sys.platform != "win32"
        and executor != "celery"
        and type(instance.run_coordinator) is DefaultRunCoordinator
        and type(instance.run_launcher) is dg.DefaultRunLauncher
        and _code_location_origin(root) is not None
    )


@dataclass
class LocalLocation:
    """The project's definitions, loaded in this process, and the worker that will
    execute the run created from them."""

    instance: dg.DagsterInstance
    recon: object  # ReconstructableRepository
    repository: object  # RepositoryDefinition, loaded from ``recon``
    origin: object  # RemoteRepositoryOrigin
    worker: subprocess.Popen

    @property
    def asset_graph(self):
        return self.repository.asset_graph

    def submit(
        self, job_name: str, *, run_config: dict, tags: dict[str, str], asset_selection=None
    ) -> dg.DagsterRun:
        """Create the run and hand it to the worker."""
        process = psutil.Process(self.worker.pid)
        where = f"{socket.gethostname()}:{process.pid}:{process.create_time():.2f}"
        run = self.instance.create_run_for_job(
            job_def=self.repository.get_job(job_name),
            run_config=run_config,
            tags={**tags, WORKER_TAG: where},
            asset_selection=frozenset(asset_selection) if asset_selection else None,
            remote_job_origin=RemoteJobOrigin(repository_origin=self.origin, job_name=job_name),
            job_code_origin=self.recon.get_reconstructable_job(job_name).get_python_origin(),
        )
        try:
            self.worker.stdin.write(f"{run.run_id}\n")
            self.worker.stdin.close()
        except BrokenPipeError:
            pass  # the worker is gone: LocalWorkerWatch reports it as the run's failure
        return run

    def watch(self, run: dg.DagsterRun) -> LocalWorkerWatch:
        return LocalWorkerWatch(self.instance, run.run_id, self.worker)


@contextlib.contextmanager
def run_worker(root: Path, *, wanted: bool) -> Iterator[subprocess.Popen | None]:
    """The run worker, started now (when ``wanted``) so that its imports overlap the
    command's checks and planning. Leaving the context before a run was handed over
    stops it (nothing of the project's was touched yet)."""
    if not wanted:
        yield None
        return
    worker = subprocess.Popen(
        [sys.executable, "-m", "assets.runtime.run_worker", "--root", str(root)],
        cwd=root, stdin=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        yield worker
    finally:
        if not worker.stdin.closed:  # no run was handed over: it has only imported
            worker.kill()
            worker.wait()


@contextlib.contextmanager
def local_location(
    instance: dg.DagsterInstance, root: Path, worker: subprocess.Popen
) -> Iterator[LocalLocation]:
    """The definitions loaded here, with ``worker`` (``run_worker``) to execute the run."""
    recon = reconstructable_repository(str(root))
    try:
        repository = recon.get_definition()
    except Exception as exc:
        raise MllifeError(f"the project's code (module {DEFINITIONS[0]}) failed to load:"
                          f" {type(exc).__name__}: {exc}") from exc  # fmt: skip
    origin = RemoteRepositoryOrigin(
        code_location_origin=_code_location_origin(root), repository_name=repository.name
    )
    yield LocalLocation(instance, recon, repository, origin, worker)


class LocalWorkerWatch:
    """While the command follows the run: passes a Terminate from the UI on to the
    worker, and reports a worker that died before the run ended as the run's failure."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, worker: subprocess.Popen):
        self.instance, self.run_id, self.worker = instance, run_id, worker
        self.interrupted = False

    def terminate(self) -> None:
        """Ctrl-C: canceling first (so Dagster records the run as canceled, not as an
        unexpected interrupt), then the worker interrupted."""
        run = self.instance.get_run_by_id(self.run_id)
        if run is not None and not run.is_finished:
            self.instance.report_run_canceling(run)
        self._interrupt()

    def _interrupt(self) -> None:
        if not self.interrupted and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGINT)
        self.interrupted = True

    def check(self, events: list, run: dg.DagsterRun) -> list[str]:
        """``run``: as the command read it this poll."""
        if run.is_finished:
            return []
        if run.status == dg.DagsterRunStatus.CANCELING and not self.interrupted:
            self._interrupt()
            return [f"run {self.run_id} is being terminated (asked from the UI)"]
        code = self.worker.poll()
        if code is None:
            return []
        why = _exit_explanation(self.worker.pid, code)
        self.instance.report_run_failed(run, message=why)
        return [why]


def _exit_explanation(pid: int, code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        cause = " (often: the system ran out of memory)" if -code == signal.SIGKILL else ""
        return f"the run worker (pid {pid}) was terminated by signal {-code} ({name}){cause}"
    return f"the run worker (pid {pid}) exited with code {code} before the run ended"


def worker_gone(run: dg.DagsterRun) -> bool | None:
    """Whether the worker of a run started by ``LocalLocation`` is gone (its process
    no longer exists on this host); None for a run started otherwise, or on another
    host."""
    where = run.tags.get(WORKER_TAG)
    if not where:
        return None
    host, pid, started = where.rsplit(":", 2)
    if host != socket.gethostname():
        return None
    try:
        process = psutil.Process(int(pid))
        return abs(process.create_time() - float(started)) > 0.05  # a reused pid
    except psutil.NoSuchProcess:
        return True
