"""``mllife worker``: a Celery worker of the team profile, run from a checkout of the
project (its own working directory; what it shares with the others is the configured
services and storage)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

from mllife._errors import MllifeError
from mllife.config.project import PROFILE_VARIABLE, load_config

#: dagster-celery's queue for every step without a queue tag
DEFAULT_QUEUE = "dagster"


def register(sub) -> None:
    worker = sub.add_parser(
        "worker",
        help="run a Celery worker that executes the steps of `mllife run --profile team"
        " --executor celery`",
    )
    worker.add_argument(
        "--queue",
        action="append",
        default=None,
        help="a queue to take steps from (repeat for several; default: the default queue"
        " and [team] training_queue). GPU workers: --queue training",
    )
    worker.add_argument(
        "--concurrency", type=int, default=1, help="steps run at once by this worker (1)"
    )
    worker.add_argument("--name", default=None, help="worker name (default: mllife-<pid>)")
    worker.set_defaults(func=cmd_worker)


def worker_environment(config) -> dict[str, str]:
    """The services of ``[team]``, checked, in the variables the graph and Dagster read."""
    from mllife.storage.instance_settings import (
        POSTGRES_URL_VARIABLE,
        instance_home,
        write_instance_settings,
    )
    from mllife.storage.services import check_broker, checked_team_database, team_broker_url

    broker = team_broker_url(config.team)
    check_broker(broker)
    database = checked_team_database(config)
    home = instance_home(config.state_dir, "team")
    write_instance_settings(home, profile="team")
    return {
        "DAGSTER_HOME": str(home),
        "MLLIFE_CONFIG": str(config.path),
        POSTGRES_URL_VARIABLE: database,
        "MLLIFE_BROKER_URL": broker,
        "MLLIFE_EXECUTOR": "celery",
        PROFILE_VARIABLE: "team",
    }


def cmd_worker(args: argparse.Namespace) -> int:
    os.environ[PROFILE_VARIABLE] = "team"  # the shared storage's paths, when configured
    config = load_config(args.config)
    queues = args.queue or [DEFAULT_QUEUE, config.team.training_queue]
    name = args.name or f"mllife-{os.getpid()}"
    env = {**os.environ, **worker_environment(config)}
    if DEFAULT_QUEUE in queues:
        _check_one_store_host(env["MLLIFE_BROKER_URL"], config.team.training_queue)
    command = [
        sys.executable, "-m", "celery", "-A", "assets.executors.celery_app", "worker",
        "--queues", ",".join(queues), "--concurrency", str(args.concurrency),
        "--hostname", f"{name}@{socket.gethostname()}", "--loglevel", "INFO",
        "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    _check_graph_loads(config, env)
    print(f"mllife worker {name}: queues {', '.join(queues)}", flush=True)
    # in the caller's working directory: the graph is found through MLLIFE_CONFIG
    return subprocess.call(command, env=env)


def _check_one_store_host(broker: str, training_queue: str) -> None:
    """Refuse to serve the default queue when workers on another host already do.

    Its steps open the metrics store, a DuckDB file on the shared storage, and DuckDB's
    lock holds between processes of one host, not across hosts of a network file system.
    Training steps, which run for minutes and may go to GPU nodes anywhere, never open
    it: they post their records through the store's inbox (``mllife.storage.inbox``)."""
    from celery import Celery

    here = socket.gethostname()
    with Celery(broker=broker) as app:
        answers = app.control.inspect(timeout=2.0).active_queues() or {}
    elsewhere = sorted(
        node
        for node, consumed in answers.items()
        if node.partition("@")[2] != here and any(q["name"] == DEFAULT_QUEUE for q in consumed)
    )
    if elsewhere:
        raise MllifeError(
            f"the default queue {DEFAULT_QUEUE!r} is already served on another host"
            f" ({', '.join(elsewhere)}); its steps write the metrics store on"
            " [team] storage, which processes of one host only may open: start this"
            f" worker with --queue {training_queue} (training steps may run on any host),"
            " or on that host"
        )


def _check_graph_loads(config, env: dict[str, str]) -> None:
    """Build the project's graph here once, as each task will: a worker that cannot (the
    project not installed, a broken mllife.toml, a missing dependency) says so now,
    instead of failing every step it takes."""
    load = [sys.executable, "-c", "from assets.definitions import defs; defs()"]
    done = subprocess.run(load, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise MllifeError(
            f"this worker cannot load the project's graph from {config.path}:"
            f" {lines[-1] if lines else 'no message'}; install the project here"
            " (pip install -c requirements.lock -e '.[team]') with the same code and"
            " mllife.toml as the runs"
        )
