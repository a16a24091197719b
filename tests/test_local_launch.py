"""Runs left behind by a run worker of `mllife run`'s own (``assets.runtime.local_launch``):
when the command and its worker are both gone (the machine's OOM killer took the process
group, a closed terminal), the next `mllife run` marks the run failed, as Dagster's run
monitoring does for a dead code server, and a live worker's run is left alone."""

import os
import socket
import subprocess
import sys

import dagster as dg
import psutil

from assets.runtime.launch import monitor_runs
from assets.runtime.local_launch import WORKER_TAG, worker_gone


@dg.asset
def one():
    return 1


def _started_run(instance, worker: str) -> dg.DagsterRun:
    return instance.create_run_for_job(
        dg.Definitions(assets=[one]).resolve_implicit_global_asset_job_def(),
        status=dg.DagsterRunStatus.STARTED,
        tags={WORKER_TAG: worker},
    )


def _where(pid: int, started: float) -> str:
    return f"{socket.gethostname()}:{pid}:{started:.2f}"


def test_a_run_whose_worker_is_gone_is_marked_failed_and_a_live_ones_is_not(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(dead.pid).create_time()
    dead.wait()
    me = psutil.Process(os.getpid())
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        gone = _started_run(instance, _where(dead.pid, started))
        reused = _started_run(instance, _where(me.pid, me.create_time() - 100))  # pid reused
        alive = _started_run(instance, _where(me.pid, me.create_time()))
        elsewhere = _started_run(instance, f"another-host:{me.pid}:{me.create_time():.2f}")
        assert [worker_gone(r) for r in (gone, reused, alive, elsewhere)] == [
            True, True, False, None,
        ]  # fmt: skip

        monitor_runs(instance)

        status = {r.run_id: instance.get_run_by_id(r.run_id).status for r in (gone, reused)}
        assert set(status.values()) == {dg.DagsterRunStatus.FAILURE}
        for run in (alive, elsewhere):
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        failure = instance.all_logs(gone.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "its run worker is gone" in failure[0].dagster_event.message
