"""``python -m assets.runtime.run``: submit a lifecycle job's run to the project's instance and
follow it.

``mllife run`` calls this in a child process (the library never imports Dagster). The
instance lives in ``.mllife/dagster`` (settings: ``dagster.yaml`` there), or with
``--profile team`` in ``.mllife/dagster-team`` with its storage in the team's PostgreSQL
database, so ``mllife ui`` (with the same profile) shows the same runs; the run itself
is launched by the instance's run launcher (``assets.runtime.launch``), like a run started from
the UI, a schedule or a sensor.
"""

import argparse
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import psutil

from assets.executors.team import (
    BROKER_VARIABLE,
    EXECUTOR_VARIABLE,
    use_celery,
    use_team_services,
)
from assets.graph.alerts import failed_check_alerts, send_alerts
from assets.runtime.local_launch import run_worker, runs_locally
from assets.runtime.memo import up_to_date, up_to_date_lines
from assets.runtime.submission import submit_and_follow
from assets.runtime.summary import StoredValues, summarize
from mllife._errors import MllifeError
from mllife.config.project import PROFILE_VARIABLE, ProjectConfig, load_config
from mllife.models.names import check_model_names
from mllife.storage.instance_settings import (
    POSTGRES_URL_VARIABLE,
    PROFILES,
    instance_home,
    write_instance_settings,
)
from mllife.storage.locks import file_lock


def prepare_instance(config: ProjectConfig, profile: str = "local") -> dg.DagsterInstance:
    """The profile's instance, its storage created; for ``team``, the database checked
    first (a clear error naming ``team.postgres_url`` instead of a driver traceback)."""
    home = instance_home(config.state_dir, profile)
    if profile == "team":
        use_team_services(config)
    os.environ["DAGSTER_HOME"] = str(home)
    # Two runs starting on a new instance would both create its SQLite tables ("table
    # jobs already exists"): the first creates them under a lock, the other waits.
    with file_lock(
        home / "mllife-instance.lock", timeout=120, what="creating the Dagster instance"
    ):
        write_instance_settings(home, profile=profile)
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)  # run storage
        instance.all_instigator_state()  # schedule storage (the "jobs" table)
        instance.fetch_materializations(dg.AssetKey("mllife_probe"), limit=1)  # event log
    return instance


@dataclass(frozen=True)
class RunOutcome:
    """``success``: every step ran and the challenger was promoted or already champion.
    ``refused``: every step ran and the promotion policy said no, a normal outcome (the
    champion stays, the report and artifacts are written) rather than an error."""

    success: bool
    refused: bool
    run_id: str
    lines: list[str]
    #: seconds per phase: check, load_graph, data_init_wait, submit, dagster_run, ...
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.success or self.refused


EXECUTORS = ("in_process", "multiprocess", "celery")


#: what a run sets in this process's environment for the code server and the steps
#: it starts; restored when the run ends, so a script that runs two projects in turn
#: (or a test) sees its own environment again
RUN_ENVIRONMENT = (
    "DAGSTER_HOME", "MLLIFE_CONFIG", PROFILE_VARIABLE, BROKER_VARIABLE, EXECUTOR_VARIABLE,
    POSTGRES_URL_VARIABLE,
)  # fmt: skip


@contextlib.contextmanager
def restored_environment(names=RUN_ENVIRONMENT):
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_lifecycle(
    config_path: Path | str,
    *,
    job_name: str = "lifecycle",
    log_level: str = "INFO",
    executor: str = "in_process",
    max_concurrent: int = 2,
    resume: str | None = None,
    force: bool = False,
    profile: str = "local",
) -> RunOutcome:
    """Submit ``job_name`` to the instance and follow the run to its end; ``resume``
    re-executes that run from its failure (Dagster's re-execution: the steps it finished
    are not rerun). The lifecycle job materializes only what changed since
    (``assets.runtime.memo``) unless ``force``. The environment variables the run sets for its
    processes are restored when it returns."""
    with restored_environment():
        outcome = _run_lifecycle(
            config_path, job_name=job_name, log_level=log_level, executor=executor,
            max_concurrent=max_concurrent, resume=resume, force=force, profile=profile,
        )  # fmt: skip
    _remember_last_run(load_config(config_path), outcome)
    return outcome


def _run_lifecycle(
    config_path, *, job_name, log_level, executor, max_concurrent, resume, force, profile
) -> RunOutcome:
    if executor not in EXECUTORS:
        raise MllifeError(f"executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    os.environ[PROFILE_VARIABLE] = profile  # for this process, the code server, the steps
    config = load_config(config_path)
    # every estimator, architecture and module name, before anything runs (milliseconds)
    check_model_names(config.models_to_train)
    os.environ["MLLIFE_CONFIG"] = str(config.path)  # the code server builds this graph
    if executor == "celery":
        use_celery(config, profile)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    # the project's own run worker loads the graph while this process checks and plans
    # (assets.runtime.local_launch); the code server is used instead for runs the
    # instance queues or launches elsewhere and for re-executions. When a run is
    # expected, the worker starts before the up-to-date check (its imports overlap it);
    # otherwise after it, so an unchanged project spends no CPU on a worker.
    os.environ["DAGSTER_HOME"] = str(instance_home(config.state_dir, profile))  # the worker's
    with contextlib.ExitStack() as stack:
        eligible = resume is None and executor != "celery" and profile == "local"
        early = eligible and _run_expected(config)
        worker = stack.enter_context(run_worker(config.root, wanted=early))
        instance = prepare_instance(config, profile)
        quick = job_name == "lifecycle" and resume is None and not force
        found = {}  # the latest materializations, read once for both plans
        if quick and config.data_path.exists():
            # nothing changed: said without loading the graph (torch and friends)
            plan = up_to_date(instance, config, found)
            if plan is not None:
                return _no_run(config, instance, plan, {"check": time.perf_counter() - clock})
        timings["check"] = time.perf_counter() - clock
        local = eligible and runs_locally(instance, config.root, executor)
        if worker is not None and not local:
            worker.kill()  # the instance queues runs, or launches them elsewhere
            worker = None
        elif worker is None and local:
            worker = stack.enter_context(run_worker(config.root, wanted=True))
        result, plan = submit_and_follow(
            stack, instance, config, timings, job_name=job_name, executor=executor,
            max_concurrent=max_concurrent, log_level=log_level, resume=resume, force=force,
            worker=worker, found=found,
        )  # fmt: skip
        if result is None:
            return _no_run(config, instance, plan, timings)
    outcome = _outcome(result, config, timings, instance)
    if plan is not None and plan.skipped:
        outcome.lines.append(plan.summary())
    return outcome


def _run_expected(config: ProjectConfig) -> bool:
    """Whether this command will likely execute steps: no run recorded yet, or
    ``mllife.toml`` edited since the last one (a hint for when to start the worker,
    never a decision: the up-to-date check decides)."""
    try:
        return config.path.stat().st_mtime >= (config.state_dir / "last_run.json").stat().st_mtime
    except FileNotFoundError:
        return True


def _no_run(config, instance, plan, timings) -> RunOutcome:
    """Nothing changed: no run; the outcome names the latest run and the champion."""
    latest = instance.get_runs(limit=1)
    run_id = latest[0].run_id if latest else ""
    lines = up_to_date_lines(config, run_id, plan) + send_alerts(config)
    return RunOutcome(True, False, run_id, lines, timings)


def _seconds_since_process_start() -> float:
    """How long this process has lived. On Linux from the kernel's start tick (10 ms
    steps): psutil's create_time adds the boot time, which /proc gives in whole seconds,
    so a phase computed from it could be off by up to a second."""
    stat = Path("/proc/self/stat")
    if hasattr(time, "CLOCK_BOOTTIME") and stat.is_file():
        start_ticks = int(stat.read_text().rpartition(")")[2].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    return time.time() - psutil.Process().create_time()


def latest_run_id(config: ProjectConfig, profile: str = "local") -> str:
    instance = prepare_instance(config, profile)
    runs = instance.get_runs(limit=1)
    if not runs:
        raise MllifeError(f"no runs in the {profile} profile's instance yet: nothing to resume")
    return runs[0].run_id


def _outcome(
    result, config: ProjectConfig, timings: dict[str, float], instance: dg.DagsterInstance
) -> RunOutcome:
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    clock = time.perf_counter()
    resumed = _resumed_runs(instance, result.dagster_run)
    values = StoredValues(result, config, failed=failed, resumed=resumed, instance=instance)
    champion = values.get("champion")
    # every step ran and the champion step kept the champion because a gate refused
    refused = result.success and champion is not None and champion.action == "not promoted"
    lines = summarize(result, config, values, refused=refused)
    lines += send_alerts(config, failed_check_alerts(result.run_id, result.all_events))
    lines.append(f"log: {write_run_log(config, result.run_id, result.entries)}")
    timings["summary"] = time.perf_counter() - clock
    return RunOutcome(result.success and not refused, refused, result.run_id, lines, timings)


def write_run_log(config: ProjectConfig, run_id: str, entries) -> Path:
    """Every line the run logged (Dagster's and the steps': the event log ``entries``
    following the run read), with time, level and step, in ``.mllife/logs/<run_id>.log``:
    what the console leaves out without ``-v``."""
    from datetime import datetime

    from mllife.storage.files import write_atomically

    lines = []
    for entry in entries:
        event = entry.dagster_event
        message = entry.user_message or (event.message if event is not None else "") or ""
        if not message:
            continue
        when = datetime.fromtimestamp(entry.timestamp).isoformat(timespec="milliseconds")
        level = logging.getLevelName(entry.level)
        lines.append(f"{when} {level:<7} {entry.step_key or '-'}: {message}")
    path = config.state_dir / "logs" / f"{run_id}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, ("\n".join(lines) + "\n").encode())
    return path


def _resumed_runs(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    """The runs ``run`` re-executes, nearest first (empty for a fresh run)."""
    chain = []
    parent_id = run.parent_run_id
    while parent_id is not None and parent_id not in chain:
        chain.append(parent_id)
        parent = instance.get_run_by_id(parent_id)
        parent_id = parent.parent_run_id if parent is not None else None
    return chain


def _remember_last_run(config: ProjectConfig, outcome: RunOutcome) -> None:
    """``.mllife/last_run.json``: how the newest `mllife run` ended, so `mllife report`
    can say when the report it shows is older than a failed run (and the next run when
    to start its worker)."""
    import json

    from mllife.storage.files import write_atomically

    status = "success" if outcome.success else "refused" if outcome.refused else "failed"
    record = {"run_id": outcome.run_id, "status": status, "finished_at": time.time()}
    write_atomically(config.state_dir / "last_run.json", json.dumps(record).encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assets.runtime.run")
    parser.add_argument("--config", default=None)
    parser.add_argument("--job", default="lifecycle", choices=["lifecycle", "retrain", "monitor"])
    parser.add_argument("--executor", default="in_process", choices=EXECUTORS)
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="RUN_ID")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--profile", default="local", choices=PROFILES)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    startup = _seconds_since_process_start()  # interpreter + imports
    try:
        profile = args.profile
        os.environ[PROFILE_VARIABLE] = profile
        config = load_config(args.config)
        resume = latest_run_id(config, profile) if args.resume == "latest" else args.resume
        outcome = run_lifecycle(
            config.path, job_name=args.job, executor=args.executor, resume=resume,
            force=args.force, profile=profile,
            # Dagster's own lines on the console only when asked: they all go to the log
            log_level="INFO" if args.verbose else "WARNING",
        )  # fmt: skip
    except MllifeError as exc:
        print(f"mllife: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(outcome.lines))
    phases = {"startup_and_imports": startup, **outcome.timings}
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    code = main()
    # Everything is persisted by now (store transactions committed, artifacts renamed
    # into place, the run recorded in the instance). Tearing down torch, dagster and
    # friends at interpreter exit takes 1-2.5 s of pure finalization, so skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
