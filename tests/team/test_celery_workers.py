"""The lifecycle on a team deployment started here for real (issue 23): PostgreSQL for
the Dagster instance, Redis as the Celery broker, and two ``mllife worker`` processes in
separate working directories. The run's steps execute on the workers, the candidates on
both, and the results equal an in-process run of the same project and data."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from mllife.config.project import PROFILE_VARIABLE, load_config
from mllife.storage.files import sha256_of
from mllife.storage.instance_settings import POSTGRES_URL_VARIABLE, instance_home
from mllife.storage.services import for_dagster
from mllife.storage.store import Store
from tests.conftest import copy_project, make_project
from tests.reliability.test_runs import row_counts
from tests.services import postgres_server, redis_server, s3_server, start_worker
from tests.serving import free_port

TEAM = '\n[team]\npostgres_url = "env:TEAM_DB"\nbroker_url = "env:TEAM_BROKER"\n'
SHARED = 'storage = "{storage}"\n'
#: step outputs on object storage (a throwaway S3 service), the rest on the shared folder
STEP_OUTPUTS = 'step_outputs = "s3://mllife-steps/steps"\n'
#: the artifacts versioned in a DVC remote that every worker reaches
VERSIONING = '\n[versioning]\nremote = "team"\npush = true\n'


def dvc_repo(config_path: Path, remote: Path) -> None:
    """Make the project a git + DVC repository with the DVC remote ``team`` and its data
    pinned by ``data.dvc``."""
    dvc = [sys.executable, "-m", "dvc"]
    for command in (
        ["git", "init", "-q"],
        [*dvc, "init", "-q"],
        [*dvc, "remote", "add", "team", str(remote)],
        [*dvc, "add", "-q", "data"],
    ):
        subprocess.run(command, cwd=config_path.parent, check=True, capture_output=True)


def mllife_run(config_path: Path, *args: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "mllife.cli", "--config", str(config_path), "run", *args],
        cwd=config_path.parent, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def checkout(project: Path, folder: Path, *, data: bool = True) -> Path:
    """A worker's own copy of the project (configuration, known problems and, unless
    ``data`` is False, the data: then only its ``data.dvc``, as in a fresh git clone)."""
    ignored = (".mllife", "data") if not data else (".mllife",)
    shutil.copytree(project.parent, folder, ignore=shutil.ignore_patterns(*ignored))
    return folder / project.name


@contextlib.contextmanager
def team_profile():
    os.environ[PROFILE_VARIABLE] = "team"
    try:
        yield
    finally:
        del os.environ[PROFILE_VARIABLE]


def results(config_path: Path) -> dict:
    """What a run decided, without run ids or times."""
    store = Store(load_config(config_path).store_path)
    return {
        "splits": store.query(
            "SELECT split_version, n_train, n_validation, n_test FROM splits"
        ).rows(),
        "models": sorted(store.query("SELECT name, model_hash FROM models").rows()),
        "metrics": sorted(
            store.query(
                "SELECT m.name, e.split, e.metric, round(e.value, 12) FROM evaluations e"
                " JOIN models m USING (model_hash)"
            ).rows()
        ),
        "champion": store.champion().model_hash,
        "rows": row_counts(config_path),
    }


def steps_by_worker(config_path: Path, database_url: str) -> dict[str, str]:
    """step key -> the Celery worker that executed it, from the run's engine events."""
    os.environ[POSTGRES_URL_VARIABLE] = for_dagster(database_url)
    try:
        home = instance_home(load_config(config_path).state_dir, "team")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs()
            hosts = {}
            for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                metadata = record.dagster_event.engine_event_data.metadata
                if "Celery worker" in metadata:
                    hosts[record.step_key] = metadata["Celery worker"].value
            return hosts
    finally:
        del os.environ[POSTGRES_URL_VARIABLE]


def test_lifecycle_on_two_celery_workers_equals_the_in_process_run(
    tmp_path, small_digits_folder, clean_small_run
):
    digits_folder = small_digits_folder  # both runs on the same small data: compared, not scored
    # the in-process run of the same project: the session's clean run, copied
    reference = copy_project(clean_small_run, tmp_path / "reference" / "p")

    shared = tmp_path / "shared"
    extra = TEAM + SHARED.format(storage=shared) + STEP_OUTPUTS + VERSIONING
    team = make_project(tmp_path / "team", digits_folder, epochs=2, extra=extra)
    remote = tmp_path / "dvc-remote"
    dvc_repo(team, remote)
    with postgres_server() as pg, redis_server() as broker, s3_server("mllife-steps") as s3:
        env = {"TEAM_DB": pg.url, "TEAM_BROKER": broker, **s3}
        workers, checkouts = [], []
        try:
            for name in ("w1", "w2"):  # each in its own checkout: only the storage is shared
                # a clone without the data: the workers pull the run's version from the remote
                folder = tmp_path / f"worker-{name}" / "project"
                checkouts.append(checkout(team, folder, data=False))
                workers.append(start_worker(checkouts[-1], name, tmp_path / name, **env))
            done = mllife_run(team, "--profile", "team", "--executor", "celery", env=env)
        finally:
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(60)
        assert done.returncode == 0, done.stdout + done.stderr
        hosts = steps_by_worker(team, pg.url)
        stored = step_objects(s3)

    steps = {s for s in hosts}
    assert {"raw_data", "splits", "champion", "status_report"} <= steps
    candidates = {hosts[s] for s in steps if s.startswith("candidate_")}
    assert {h.split("@")[0] for h in candidates} == {"w1", "w2"}
    with team_profile():
        assert results(team) == results(reference)
        assert load_config(team).store_path == shared / "store.duckdb"
        # the training steps posted their models and trials; the next steps ingested them
        posted = Store(shared / "store.duckdb").query(
            "SELECT kind, count(*) AS n FROM ingested_segments GROUP BY kind ORDER BY kind"
        )
        assert posted.rows() == [("models", 3), ("trials", 3)]
    assert {p.name for p in shared.iterdir()} >= {"store.duckdb", "artifacts"}
    # the values passed between steps went through the bucket, one run's folder
    assert not (shared / "steps").exists()
    assert len({key.split("/")[2] for key in stored}) == 1
    assert {key.rsplit("/", 1)[1] for key in stored} >= {"splits", "champion", "candidate_cnn"}
    for folder in [team.parent, *(c.parent for c in checkouts)]:  # nothing kept locally
        assert not (folder / ".mllife" / "store.duckdb").exists()
        assert not (folder / "artifacts").exists()
    for worker in checkouts:  # each pulled the run's data from the remote
        assert sorted(p.name for p in (worker.parent / "data" / "digits").iterdir()) == [
            str(d) for d in range(10)
        ]

    # the artifacts went to the DVC remote (pinned by the published artifacts.dvc), from
    # which a member restores a model the shared storage lost
    pinned = (shared / "artifacts.dvc").read_text()
    md5 = pinned.split("md5: ")[1].split()[0]
    assert (remote / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    with team_profile():
        champion = Store(shared / "store.duckdb").champion().model_hash
        lost = next((shared / "artifacts" / "models").glob(f"{champion}.*"))
        lost.unlink()
        member = checkout(team, tmp_path / "member" / "project")
        restored = subprocess.run(
            [sys.executable, "-m", "mllife.cli", "--config", str(member), "checkout",
             champion[:12], "--remote", "team"],
            cwd=member.parent, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert sha256_of(lost) == champion


def step_objects(s3_env: dict) -> list[str]:
    """Keys of every object under ``s3://mllife-steps/steps``."""
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=s3_env["FSSPEC_S3_ENDPOINT_URL"], key="test", secret="test")
    return fs.find("mllife-steps/steps")


def started_on(config_path: Path, database_url: str, step: str) -> str | None:
    if not _has_run(database_url):
        return None
    return steps_by_worker(config_path, database_url).get(step)


def _has_run(database_url: str) -> bool:
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('runs') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return False
        cursor.execute("SELECT count(*) FROM runs")
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_mid_training_fails_the_run_and_resume_finishes(
    tmp_path, small_digits_folder
):
    # the small digits: run mechanics, not accuracy; 40 epochs keep the CNN training for
    # seconds after its step starts, long enough to kill its worker mid-training
    team = make_project(tmp_path / "team", small_digits_folder, epochs=40, extra=TEAM)
    store_path = load_config(team).store_path
    with postgres_server() as pg, redis_server() as broker:
        env = {"TEAM_DB": pg.url, "TEAM_BROKER": broker}
        workers, run = {}, None
        try:
            for name in ("w1", "w2"):
                workers[name] = start_worker(team, name, tmp_path / f"worker-{name}", **env)
            # its own process group: a failing test stops the run with its code server and
            # run worker, which would otherwise go on using a CPU after the test
            run = subprocess.Popen(
                [sys.executable, "-m", "mllife.cli", "--config", str(team), "run",
                 "--profile", "team", "--executor", "celery"],
                cwd=team.parent, env={**os.environ, **env}, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, start_new_session=True,
            )  # fmt: skip
            deadline = time.monotonic() + 300
            while (host := started_on(team, pg.url, "candidate_cnn")) is None:
                assert run.poll() is None and time.monotonic() < deadline, run.stdout.read()
                time.sleep(0.5)
            victim = host.split("@")[0]
            os.killpg(workers.pop(victim).pid, signal.SIGKILL)  # the worker and its child
            output, _ = run.communicate(timeout=300)
            assert run.returncode == 1, output
            assert "running step candidate_cnn stopped answering" in output
            # the lost step named in the summary, with what follows for the run
            assert 'FAILED candidate_cnn: Step "candidate_cnn" failed on its Celery worker' in (
                output
            ), output
            assert ": FAILED\n" in output
            assert Store(store_path).champion() is None  # nothing was promoted

            done = mllife_run(team, "--profile", "team", "--executor", "celery", "--resume",
                              env=env)  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            assert Store(store_path).champion() is not None
        finally:
            if run is not None and run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait(60)
            for worker in workers.values():
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(60)


def test_unreachable_broker_or_unwritable_storage_is_a_clear_error(tmp_path, digits_folder):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    extra = TEAM + SHARED.format(storage=blocker / "shared")
    team = make_project(tmp_path / "team", digits_folder, extra=extra)
    with postgres_server() as pg:
        port = free_port()  # no broker there
        env = {"TEAM_DB": pg.url, "TEAM_BROKER": f"redis://:pw@127.0.0.1:{port}/0"}
        done = mllife_run(team, "--profile", "team", "--executor", "celery", env=env)
        assert done.returncode == 2
        assert f"the Celery broker at 127.0.0.1:{port}/0 (team.broker_url) is not reachable" in (
            done.stderr
        )
        assert ":pw@" not in done.stderr
        done = mllife_run(team, "--profile", "team", env=env)
        assert done.returncode == 2
        assert f"the shared storage {blocker / 'shared'} (team.storage) is not writable" in (
            done.stderr
        )
        worker = subprocess.run(
            [sys.executable, "-m", "mllife.cli", "--config", str(team), "worker"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert worker.returncode == 2
        assert "(team.broker_url) is not reachable" in worker.stderr
    with postgres_server() as pg, redis_server() as broker:
        # a worker that cannot import the project's graph (here: a stale `assets` package
        # first on its path): refused before it takes a step
        stale = tmp_path / "stale" / "assets"
        stale.mkdir(parents=True)
        (stale / "__init__.py").write_text("raise ImportError('stale checkout')\n")
        project = make_project(tmp_path / "project", digits_folder, extra=TEAM)
        env = {
            "TEAM_DB": pg.url,
            "TEAM_BROKER": broker,
            "PYTHONPATH": str(stale.parent),
            "PYTHONSAFEPATH": "1",
        }  # not the working directory's assets/ either
        worker = subprocess.Popen(
            [sys.executable, "-m", "mllife.cli", "--config", str(project), "worker"],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        try:
            _, stderr = worker.communicate(timeout=120)
        finally:
            if worker.poll() is None:  # it started after all: stop it and its Celery
                os.killpg(worker.pid, signal.SIGKILL)
        assert worker.returncode == 2, stderr
        assert f"this worker cannot load the project's graph from {project}" in stderr
        assert "stale checkout" in stderr
    assert not (team.parent / ".mllife" / "store.duckdb").exists()


def test_a_second_host_may_serve_training_but_not_the_default_queue(tmp_path, digits_folder):
    """The default queue's steps open the DuckDB store, whose lock does not hold across
    hosts: a worker on another host is refused it (and told to take training only)."""
    project = make_project(tmp_path / "project", digits_folder, extra=TEAM)
    with postgres_server() as pg, redis_server() as broker:
        env = {"TEAM_DB": pg.url, "TEAM_BROKER": broker}
        log = tmp_path / "elsewhere.log"
        elsewhere = subprocess.Popen(  # a worker of another host, on the default queue
            [sys.executable, "-m", "celery", "-A", "assets.executors.celery_app", "worker",
             "--hostname", "w9@elsewhere.example", "--queues", "dagster", "--pool", "solo",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            cwd=tmp_path, env={**os.environ, "MLLIFE_BROKER_URL": broker},
            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while " ready." not in log.read_text():
                assert elsewhere.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            refused = subprocess.run(
                [sys.executable, "-m", "mllife.cli", "--config", str(project), "worker"],
                env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert refused.returncode == 2, refused.stderr
            assert "the default queue 'dagster' is already served on another host" in (
                refused.stderr
            )
            assert "w9@elsewhere.example" in refused.stderr
            assert "--queue training" in refused.stderr
            # a training-only worker of this host starts (one of another host would too)
            trainer = start_worker(project, "gpu1", tmp_path / "gpu1", queues=("training",), **env)
        finally:
            os.killpg(elsewhere.pid, signal.SIGTERM)
            elsewhere.wait(60)
        os.killpg(trainer.pid, signal.SIGTERM)
        trainer.wait(60)
