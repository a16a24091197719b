"""``python -m assets.runtime.run_worker``: a run worker started before its run exists.

``mllife run`` starts this process as soon as it knows a run is needed; while the
command plans the run and creates it in the instance, the worker imports Dagster and
loads the project's definitions on the other core. It then reads the run's id from its
standard input and executes the run as Dagster's own run worker does (the same
``core_execute_run`` behind ``dagster api execute_run``, interrupts captured so that
SIGINT ends the run at a safe point as "canceled"). An empty input means no run after
all: the worker exits. Each step's events go to the instance's event log, which the
command follows, as for a run launched by the code server.

Why not the code server's launcher: it starts a code server process (its imports) and
then spawns a run worker (the same imports again) after the run is created, ~3 s on
2 cores before the first step; here the imports overlap the planning, and only one
process besides the command loads the graph.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

import dagster as dg

from assets.dagster_private import (
    DagsterExecutionInterruptedError,
    EngineEventData,
    ReconstructableRepository,
    capture_interrupts,
    core_execute_run,
)

#: the module and attribute of the project's definitions (workspace.yaml)
DEFINITIONS = ("assets.definitions", "defs")


def reconstructable_repository(root: str) -> ReconstructableRepository:
    module, attribute = DEFINITIONS
    return ReconstructableRepository.for_module(module, attribute, working_directory=root)


def execute(run_id: str, repository: ReconstructableRepository) -> None:
    # opened only now: before the run exists the command may still be creating the
    # instance's storage (two processes creating its SQLite tables at once collide)
    instance = dg.DagsterInstance.get()
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise SystemExit(f"run {run_id} is not in the instance at {instance.root_directory}")
    pid = os.getpid()
    instance.report_engine_event(
        f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
    )
    job = repository.get_reconstructable_job(run.job_name)
    try:
        for _event in core_execute_run(job, run, instance, inject_env_vars=False):
            pass
    except (KeyboardInterrupt, DagsterExecutionInterruptedError):
        pass  # terminated: recorded as canceled by core_execute_run
    except Exception:
        # recorded in the event log as the run's failure by core_execute_run; the
        # traceback also on this process's stderr (the command's console)
        traceback.print_exc()
    finally:
        instance.report_engine_event(f"Process for run exited (pid: {pid}).", run)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m assets.runtime.run_worker")
    parser.add_argument("--root", required=True, help="the project folder")
    args = parser.parse_args()
    with capture_interrupts():
        repository = reconstructable_repository(args.root)
        repository.get_definition()  # the imports and the graph, before the run exists
        run_id = sys.stdin.readline().strip()
        if run_id:
            execute(run_id, repository)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # everything is in the instance; skip tearing down torch and friends
