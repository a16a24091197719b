"""Creating a lifecycle run and following it to its end, for ``assets.runtime.run``: with
the project's own run worker (``local_launch``) or through the code server (``launch``:
queued runs, other launchers, re-execution), beside the default data being written."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import dagster as dg

from assets.executors.execution import run_config_for
from assets.executors.team import BROKER_VARIABLE, data_pin
from assets.graph.resources import CONFIG_DIGEST_TAG
from assets.runtime.launch import (
    WORKER_GONE,
    follow,
    monitor_runs,
    project_workspace,
    worker_alive,
)
from assets.runtime.local_launch import local_location
from assets.runtime.memo import plan_run
from mllife._errors import MllifeError
from mllife.config.project import ProjectConfig
from mllife.storage.files import sha256_of

__all__ = ["submit_and_follow"]


def submit_and_follow(
    stack, instance, config, timings, *, job_name, executor, max_concurrent, log_level, resume,
    force, worker, found,
):  # fmt: skip
    """Create the run (or its re-execution), hand it to its worker and follow it to its
    end: (the followed run, the plan), or (None, the plan) when nothing needs a run."""
    tags = {CONFIG_DIGEST_TAG: sha256_of(config.path), "mllife/started_by": "mllife run"}
    if resume is None:
        tags.update(data_pin(config))
    location = stack.enter_context(
        _location_beside_data_init(instance, config, timings, worker=worker)
    )
    clock = time.perf_counter()
    monitor_runs(instance)  # no daemon here: runs that died leave no stale state
    if resume is not None:
        # the parent's tags, its config digest among them: a config edited since is
        # refused by the steps (assets.graph.resources), as during the run itself
        started_by = {"mllife/started_by": tags["mllife/started_by"]}
        run = location.resubmit_from_failure(_resumable(instance, resume), started_by)
        plan = None
    else:
        selection, plan = None, None
        if job_name == "lifecycle" and not force:
            plan = plan_run(location.asset_graph, instance, config, found)
            if not plan.selection:
                return None, plan
            selection = plan.selection if plan.skipped else None
        run_config = run_config_for(executor, max_concurrent, log_level)
        run = location.submit(job_name, run_config=run_config, tags=tags, asset_selection=selection)
    timings["submit"] = time.perf_counter() - clock
    clock = time.perf_counter()
    watch, terminate = None, None
    if worker is not None:
        watch = location.watch(run)
        terminate = watch.terminate
    elif executor == "celery":
        from assets.executors.celery_watch import CeleryWorkerWatch

        watch = CeleryWorkerWatch(os.environ[BROKER_VARIABLE])
    result = follow(
        instance, run.run_id, total_steps=_count_steps(instance, run), worker_watch=watch,
        terminate=terminate,
    )  # fmt: skip
    timings["dagster_run"] = time.perf_counter() - clock
    return result, plan


def _count_steps(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int:
    """Steps the run will execute (its execution plan's)."""
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    return len(plan.step_keys_to_execute)


@contextlib.contextmanager
def _location_beside_data_init(instance, config: ProjectConfig, timings, *, worker):
    """The project's code location (the graph loaded here with the run worker starting,
    or the code server), while a child process writes the default data (when needed):
    loading the graph takes seconds of CPU, and so does writing the data."""
    clock = time.perf_counter()
    data_init = _start_data_init(config)
    with contextlib.ExitStack() as stack:
        try:
            if worker is not None:
                location = stack.enter_context(local_location(instance, config.root, worker))
            else:
                location = stack.enter_context(project_workspace(instance, config.root))
        finally:
            timings["load_graph"] = time.perf_counter() - clock
            clock = time.perf_counter()
            if data_init is not None:
                _finish_data_init(data_init, config)  # after a load error too: never orphaned
            timings["data_init_wait"] = time.perf_counter() - clock
        yield location


def _start_data_init(config: ProjectConfig) -> subprocess.Popen | None:
    """``mllife data init`` in a child process when the default data is missing."""
    if config.data_path.exists() or config.data.default_data == "none":
        return None
    command = [sys.executable, "-m", "mllife.cli", "--config", str(config.path), "data", "init"]
    return subprocess.Popen(
        command, cwd=config.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish_data_init(process: subprocess.Popen, config: ProjectConfig) -> None:
    out, err = process.communicate()
    print(out, end="", flush=True)
    lines = err.strip().splitlines()
    if process.returncode == 0 or len(lines) > 1:
        # warnings, or a traceback: all of it; a one-line error goes into the exception
        print(err, end="", file=sys.stderr, flush=True)
    if process.returncode != 0:
        detail = lines[-1].removeprefix("mllife: error: ") if lines else "no message"
        raise MllifeError(
            f"writing the default data to {config.data_path} failed"
            f" (exit code {process.returncode}): {detail}"
        )


def _resumable(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRun:
    """The run to re-execute, checked. A run still marked started whose worker is gone
    (the code server that launched it died with it) is marked failed first, as run
    monitoring would."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise MllifeError(
            f"no run {run_id} in {instance.root_directory}: `mllife run --resume` without"
            " an id resumes the latest; the Runs page of `mllife ui` lists them all"
        )
    if run.status == dg.DagsterRunStatus.SUCCESS:
        raise MllifeError(f"run {run_id} succeeded: there is nothing to resume")
    if not run.is_finished:
        if worker_alive(instance, run) is not False:
            raise MllifeError(
                f"run {run_id} is still {run.status.value.lower()}; wait for it, or"
                " terminate it (Ctrl-C in its `mllife run`, or Terminate in `mllife ui`)"
            )
        instance.report_run_failed(run, message=WORKER_GONE)
        run = instance.get_run_by_id(run_id)
    return run
