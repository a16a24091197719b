"""Runs submitted to the project's Dagster instance, the way the UI, a schedule or a
sensor submits them, and followed from its event log.

``mllife run`` loads the project's ``workspace.yaml`` (a code server process, as
``dagster dev`` does), creates the run from that code location and hands it to the
instance's run coordinator, which launches it with the configured run launcher (the
default one locally: a run worker process started by the code server). So runs started
from the CLI are ordinary instance runs: they sit in the run queue when one is
configured, the UI can terminate them, the code server marks a run failed when its
worker process dies, and the UI's "re-execute from failure" resumes them.

Dagster has no public Python API for launching from a workspace (its own ``dagster job
launch`` CLI has no asset selection or re-execution), so this module uses the same
internals that CLI and the sensor daemon use, through ``assets.dagster_private`` (the
one module that names them, with the versions they were checked against).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from assets.dagster_private import (
    JobSubsetSelector,
    ModuleTarget,
    ReexecutionStrategy,
    WorkspaceFileTarget,
    WorkspaceProcessContext,
    can_cancel_execution,
    concurrency_slots_iteration,
)
from assets.runtime.local_launch import WORKER_TAG, worker_gone
from mllife._errors import MllifeError

__all__ = ["FollowedRun", "ProjectWorkspace", "follow", "project_workspace"]

#: how often the event log is read while following a run
POLL_S = 0.1
#: the longest wait between two reads of a run's events while nothing new arrives
MAX_POLL_S = 0.4
#: why a started run whose worker is gone is marked failed
WORKER_GONE = (
    "its run worker is gone: its process (or the code server that ran it) no longer exists"
)


@dataclass
class ProjectWorkspace:
    """The project's code location as the instance sees it (one location, one repo)."""

    instance: dg.DagsterInstance
    process: WorkspaceProcessContext
    context: object  # BaseWorkspaceRequestContext
    location: object  # CodeLocation
    repository: object  # RemoteRepository

    def remote_job(self, job_name: str, asset_selection=None):
        selector = JobSubsetSelector(
            location_name=self.location.name,
            repository_name=self.repository.name,
            job_name=job_name,
            op_selection=None,
            asset_selection=asset_selection,
        )
        return self.location.get_job(selector)

    @property
    def asset_graph(self):
        return self.repository.asset_graph

    def submit(
        self, job_name: str, *, run_config: dict, tags: dict[str, str], asset_selection=None
    ) -> dg.DagsterRun:
        """Create the run (its plan computed by the code server) and submit it."""
        remote_job = self.remote_job(job_name, asset_selection)
        plan = self.location.get_execution_plan(
            remote_job, run_config, step_keys_to_execute=None, known_state=None,
            instance=self.instance,
        ).execution_plan_snapshot  # fmt: skip
        run = self.instance.create_run(
            job_name=job_name,
            run_id=None,
            run_config=run_config,
            status=None,
            tags={**(remote_job.run_tags or {}), **tags},
            root_run_id=None,
            parent_run_id=None,
            step_keys_to_execute=plan.step_keys_to_execute,
            execution_plan_snapshot=plan,
            job_snapshot=remote_job.job_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            asset_selection=frozenset(asset_selection) if asset_selection else None,
            asset_check_selection=None,
            resolved_op_selection=remote_job.resolved_op_selection,
            op_selection=None,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_graph=self.repository.asset_graph,
        )
        return self.instance.submit_run(run.run_id, self.context)

    def resubmit_from_failure(self, parent: dg.DagsterRun, tags: dict[str, str]) -> dg.DagsterRun:
        """Dagster's re-execution from failure (what the UI's button does): the failed and
        never-run steps of ``parent`` rerun, the others' outputs are reused."""
        remote_job = self.remote_job(parent.job_name, parent.asset_selection)
        run = self.instance.create_reexecuted_run(
            request_context=self.context,
            parent_run=parent,
            code_location=self.location,
            remote_job=remote_job,
            strategy=ReexecutionStrategy.FROM_FAILURE,
            # the parent's tags, less the address of its own run worker (long gone): a
            # run launched here has none, and a stale one made run monitoring in another
            # `mllife run` take the dead worker for this run's and mark it failed
            extra_tags={**tags, WORKER_TAG: ""},
            use_parent_run_tags=True,
        )
        return self.instance.submit_run(run.run_id, self.context)


@contextlib.contextmanager
def project_workspace(instance: dg.DagsterInstance, root: Path) -> Iterator[ProjectWorkspace]:
    """The code location of ``root/workspace.yaml``, served by a code server process for
    as long as the context is open (runs it launched finish on their own)."""
    workspace_file = root / "workspace.yaml"
    if workspace_file.is_file():
        target, where = WorkspaceFileTarget(paths=[str(workspace_file)]), str(workspace_file)
    else:  # what `mllife init` writes into workspace.yaml
        target = ModuleTarget(
            module_name="assets.definitions", attribute=None, working_directory=str(root),
            location_name="assets.definitions",
        )  # fmt: skip
        where = "module assets.definitions"
    with WorkspaceProcessContext(instance, target, code_server_log_level="WARNING") as process:
        context = process.create_request_context()
        names = list(context.code_location_names)
        for name in names:
            if (error := context.get_code_location_error(name)) is not None:
                raise MllifeError(
                    f"the project's code ({where}) failed to load:\n{error.to_string()}"
                )
        if len(names) != 1:
            raise MllifeError(
                f"{where} names {len(names)} code locations ({', '.join(names)}); mllife runs"
                " the lifecycle of a workspace with exactly one"
            )
        (name,) = names
        location = context.get_code_location(name)
        (repository,) = location.get_repositories().values()
        yield ProjectWorkspace(instance, process, context, location, repository)


def worker_alive(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool | None:
    """Whether the run's worker still executes it: the project's own worker
    (``assets.runtime.local_launch``) or the code server that launched it (its address
    is in the run's tags); None when neither can tell (another launcher, another host)."""
    gone = worker_gone(run)
    if gone is not None:
        return not gone
    return can_cancel_execution(instance, run.run_id)


def monitor_runs(instance: dg.DagsterInstance, *, own_run: str | None = None) -> None:
    """One round of run monitoring, as the Dagster daemon does it, for when no daemon
    runs: a started run whose worker is verifiably gone is marked failed (the default
    launcher cannot report a dead worker once its code server died too), and the pool
    slots of ended runs are freed (Dagster's own iteration), so no step waits on a slot
    that a dead run still holds."""
    for record in instance.get_run_records(
        dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]), limit=50
    ):
        run = record.dagster_run
        if run.run_id != own_run and worker_alive(instance, run) is False:
            instance.report_run_failed(run, message=WORKER_GONE)
    for _ in concurrency_slots_iteration(instance, _quiet):
        pass


_quiet = logging.getLogger("mllife.run_monitoring")


#: seconds between monitoring rounds while following a run
MONITOR_EVERY_S = 2.0

_FINISHED = {
    dg.DagsterEventType.STEP_SUCCESS: "done",
    dg.DagsterEventType.STEP_FAILURE: "FAILED",
    dg.DagsterEventType.STEP_SKIPPED: "skipped",
}


def follow(
    instance: dg.DagsterInstance,
    run_id: str,
    *,
    total_steps: int,
    worker_watch=None,
    terminate=None,
) -> FollowedRun:
    """Wait for the run to end, printing a line per finished step; Ctrl-C terminates the
    run (``terminate``; by default through the instance's launcher) and waits for it to
    stop. ``worker_watch`` (a celery run's ``CeleryWorkerWatch``, the project's own
    worker's ``LocalWorkerWatch``) reports a worker that is gone."""  # fmt: skip
    progress = Progress(sys.stderr)
    cursor, done, queued_said, terminating = None, set(), False, False
    entries, events = [], []  # every entry of the run's event log, and its events, read once
    monitored, poll = 0.0, POLL_S
    while True:
        try:
            if time.monotonic() - monitored >= MONITOR_EVERY_S:
                monitor_runs(instance, own_run=run_id)
                monitored = time.monotonic()
            # the status first: a run that had finished by now had written every event
            # of it by now, so the read below gets them all (read the other way round, a
            # run that finishes between the two reads loses its last events: the failed
            # check, the failed step)
            run = instance.get_run_by_id(run_id)
            connection = instance.get_records_for_run(run_id, cursor=cursor, limit=500)
            for record in connection.records:
                entry = record.event_log_entry
                entries.append(entry)
                event = entry.dagster_event
                if event is not None:
                    events.append(event)
                if event and event.event_type in _FINISHED and event.step_key:
                    done.add(event.step_key)
                    total = max(total_steps, len(done))
                    word = _FINISHED[event.event_type]
                    progress.line(f"[{len(done)}/{total} steps] {event.step_key} {word}")
                elif event is None and entry.user_message:
                    progress.message(entry.step_key, entry.user_message)
            cursor = connection.cursor
            if run.is_finished and not connection.has_more:
                return FollowedRun(run, events, entries)
            for line in worker_watch.check(events, run) if worker_watch is not None else []:
                progress.line(line)
            if run.status == dg.DagsterRunStatus.QUEUED and not queued_said:
                queued_said = True
                progress.line(
                    f"run {run_id} is queued: the Dagster daemon (`mllife ui` starts one)"
                    " launches it"
                )
            if connection.records:
                poll = POLL_S
            elif not connection.has_more:
                # nothing new: a step busy training or scoring; poll less often (each
                # poll is two queries, CPU that the run's own work shares the cores with)
                time.sleep(poll)
                poll = min(poll * 1.5, MAX_POLL_S)
        except KeyboardInterrupt:
            if terminating:
                raise  # a second Ctrl-C: stop following; the run ends on its own
            terminating = True
            progress.line(f"\nterminating run {run_id} (Ctrl-C again to stop waiting)...")
            if terminate is not None:
                terminate()
            else:
                instance.run_coordinator.cancel_run(run_id)


class Progress:
    """What `mllife run` shows while a run goes: a line per finished step; the steps'
    own messages (trials, epochs) as one line rewritten in place on a terminal, and only
    each trial's result elsewhere (a log, CI). Dagster's full log lines go to the run's
    log file (and to the console with ``-v``)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._status = False

    def line(self, text: str) -> None:
        self._clear()
        print(text, file=self.stream, flush=True)

    def message(self, step: str | None, text: str) -> None:
        text = " ".join(text.split())  # one line
        if self.live:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            shown = f"  {step or ''}: {text}"[:width]
            print(f"\r\033[K{shown}", end="", file=self.stream, flush=True)
            self._status = True
        elif ": trial " in text:
            self.line(f"  {text}")

    def _clear(self) -> None:
        if self._status:
            print("\r\033[K", end="", file=self.stream)
            self._status = False


class FollowedRun:
    """A finished run read back from the event log, with the parts of Dagster's
    ``ExecuteJobResult`` that the summary uses."""

    def __init__(self, run: dg.DagsterRun, events: list, entries: list = ()) -> None:
        self.dagster_run, self.run_id = run, run.run_id
        self.success = run.status == dg.DagsterRunStatus.SUCCESS
        self.all_events = events
        #: every entry of the run's event log (its events and the steps' messages)
        self.entries = list(entries)

    def get_asset_materialization_events(self) -> list:
        return [
            e for e in self.all_events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        ]

    def get_asset_check_evaluations(self) -> list:
        return [
            e.asset_check_evaluation_data
            for e in self.all_events
            if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ]

    def run_failure_messages(self) -> list[str]:
        """Why the run ended without a failed step: Dagster's engine events about its
        worker process (died, terminated) and its failure or cancellation event."""
        ended = {dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED}
        engine = dg.DagsterEventType.ENGINE_EVENT
        return [
            e.message.strip()
            for e in self.all_events
            if e.message
            and (
                e.event_type in ended
                or (e.event_type == engine and "execution process" in e.message)
            )
        ]
