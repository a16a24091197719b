"""The lifecycle on the team deployment against the same lifecycle in process, same run
(issue 23): PostgreSQL, Redis and two Celery workers started here, as the tests do.

    python benchmarks/bench_team.py [--epochs 8]

Prints each run's wall time, whether the candidates' training overlapped on the two
workers (from the steps' start and end events), and the Celery hop: per step, the time
from the executor's submission to the step's start on a worker.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import make_project  # noqa: E402
from tests.services import postgres_server, redis_server, start_worker  # noqa: E402

TEAM = '\n[team]\npostgres_url = "env:TEAM_DB"\nbroker_url = "env:TEAM_BROKER"\nstorage = "{s}"\n'


def timed_run(config: Path, *args: str, env: dict | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mllife.cli", "--config", str(config), "run", *args],
        cwd=config.parent, env={**os.environ, **(env or {})}, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return time.perf_counter() - started


def step_times(config: Path, database_url: str) -> tuple[dict, list[float]]:
    """{step: (start, end)} and the submission-to-start delays, from the event log."""
    import dagster as dg

    from mllife.config.project import load_config
    from mllife.storage.instance_settings import POSTGRES_URL_VARIABLE, instance_home
    from mllife.storage.services import for_dagster

    os.environ[POSTGRES_URL_VARIABLE] = for_dagster(database_url)
    home = instance_home(load_config(config).state_dir, "team")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        submitted, spans = {}, {}
        for record in instance.all_logs(run.run_id):
            event, at = record.dagster_event, record.timestamp
            if event is None or not event.step_key:
                continue
            if event.event_type == dg.DagsterEventType.ENGINE_EVENT and (
                "Submitting celery task" in record.user_message
            ):
                submitted[event.step_key] = at
            elif event.event_type == dg.DagsterEventType.STEP_START:
                spans[event.step_key] = (at, None)
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                spans[event.step_key] = (spans[event.step_key][0], at)
    hops = [spans[k][0] - submitted[k] for k in spans if k in submitted]
    return spans, hops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    from mllife.data.defaults import write_digits

    root = Path(tempfile.mkdtemp(prefix="bench-team-"))
    digits = root / "digits"
    write_digits(digits)
    local = make_project(root / "local", digits, epochs=args.epochs)
    in_process = timed_run(local)
    team = make_project(root / "team", digits, epochs=args.epochs,
                        extra=TEAM.format(s=root / "shared"))  # fmt: skip
    with postgres_server() as pg, redis_server() as broker:
        env = {"TEAM_DB": pg.url, "TEAM_BROKER": broker}
        workers = []
        try:
            for name in ("w1", "w2"):
                copy = root / f"checkout-{name}"
                shutil.copytree(team.parent, copy)
                workers.append(start_worker(copy / team.name, name, root / name, **env))
            celery = timed_run(team, "--profile", "team", "--executor", "celery", env=env)
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(60)
        spans, hops = step_times(team, pg.url)
    training = sorted((s, e, k) for k, (s, e) in spans.items() if k.startswith("candidate_"))
    overlap = max(0.0, min(e for _, e, _ in training[:2]) - training[1][0])
    print(f"in process (one machine, SQLite instance): {in_process:.1f} s wall")
    print(f"team (PostgreSQL, Redis, 2 Celery workers): {celery:.1f} s wall,"
          f" {celery / in_process:.2f}x the in-process run")  # fmt: skip
    for start, end, key in training:
        print(f"  {key:28s} {start - training[0][0]:6.1f} s .. {end - training[0][0]:6.1f} s")
    print(f"candidate training overlapped {overlap:.1f} s (the first two to start)")
    print(f"Celery hop, submission to step start: median {np.median(hops):.2f} s,"
          f" p90 {np.percentile(hops, 90):.2f} s over {len(hops)} steps")  # fmt: skip


if __name__ == "__main__":
    main()
