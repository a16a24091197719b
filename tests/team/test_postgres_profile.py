"""The team profile's Dagster instance on a real PostgreSQL server (issue 23, first
part): ``mllife run --profile team`` keeps its runs, events and pool slots in the
database of ``[team] postgres_url``; a database that is down, or a URL that is missing,
is a clear error before any step runs."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from mllife._errors import ConfigError
from mllife.config.project import load_config
from mllife.storage.instance_settings import POSTGRES_URL_VARIABLE, instance_home
from mllife.storage.services import for_dagster, team_postgres_url
from mllife.storage.store import Store
from tests.conftest import make_project
from tests.services import postgres_server
from tests.serving import free_port
from tests.ui_graphql import poll_graphql


def mllife_run(config_path: Path, *args: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "mllife.cli", "--config", str(config_path), "run", *args],
        cwd=config_path.parent,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )


def team_project(root: Path, digits: Path, url: str) -> Path:
    return make_project(root, digits, epochs=2, extra=f'\n[team]\npostgres_url = "{url}"\n')


def test_runs_live_in_postgres(tmp_path, digits_folder):
    with postgres_server() as pg:
        config_path = team_project(tmp_path / "project", digits_folder, "env:TEAM_DB")
        env = {"TEAM_DB": pg.url}
        first = mllife_run(config_path, "--profile", "team", env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        config = load_config(config_path)
        assert Store(config.store_path).champion() is not None

        # the run and its events are rows of the team's database...
        with psycopg2.connect(pg.url) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT run_id, status FROM runs")
            runs = cursor.fetchall()
            cursor.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", [runs[0][0]])
            events = cursor.fetchone()[0]
        assert [status for _, status in runs] == ["SUCCESS"]
        assert events > 0
        # ...and nothing went to the local profile's SQLite instance
        assert not (instance_home(config.state_dir, "local") / "history").exists()
        settings = (instance_home(config.state_dir, "team") / "dagster.yaml").read_text()
        assert pg.url not in settings and POSTGRES_URL_VARIABLE in settings

        # the memo reads the materializations back from PostgreSQL: nothing to redo
        again = mllife_run(config_path, "--profile", "team", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "up to date" in again.stdout
        os.environ[POSTGRES_URL_VARIABLE] = for_dagster(pg.url)
        try:
            home = instance_home(config.state_dir, "team")
            instance = dg.DagsterInstance.from_config(str(home))
            assert [r.run_id for r in instance.get_runs()] == [runs[0][0]]
            instance.dispose()
        finally:
            del os.environ[POSTGRES_URL_VARIABLE]

        # `mllife ui --profile team` shows that run (the UI's own GraphQL API)
        port = free_port()
        ui = subprocess.Popen(
            [sys.executable, "-m", "mllife.cli", "--config", str(config_path), "ui",
             "--profile", "team", "--port", str(port)],
            cwd=config_path.parent, env={**os.environ, **env}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            shown = ui_runs(port, deadline=time.monotonic() + 180)
        finally:
            os.killpg(ui.pid, signal.SIGTERM)
            ui.wait(timeout=60)
        assert shown == [(runs[0][0], "SUCCESS")]


def ui_runs(port: int, *, deadline: float) -> list[tuple[str, str]]:
    def runs(data: dict) -> list[tuple[str, str]] | None:
        results = data.get("runsOrError", {}).get("results")
        return None if results is None else [(r["runId"], r["status"]) for r in results]

    query = "{ runsOrError { ... on Runs { results { runId status } } } }"
    return poll_graphql(port, query, runs, deadline=deadline)


def test_database_down_is_a_clear_error_before_any_step(tmp_path, digits_folder):
    port = free_port()  # nothing listens there
    url = f"postgresql://someone:secret@127.0.0.1:{port}/mllife"
    config_path = team_project(tmp_path / "project", digits_folder, url)
    done = mllife_run(config_path, "--profile", "team")
    assert done.returncode == 2
    assert f"PostgreSQL at 127.0.0.1:{port}/mllife (team.postgres_url) is not reachable" in (
        done.stderr
    )
    assert "secret" not in done.stderr + done.stdout  # the password is never printed
    config = load_config(config_path)
    assert not config.store_path.exists()  # no step ran, no champion
    assert not (instance_home(config.state_dir, "team") / "storage").exists()


def test_team_url_missing_or_unset(tmp_path, digits_folder, monkeypatch):
    plain = load_config(make_project(tmp_path / "a", digits_folder))
    with pytest.raises(ConfigError, match=r"needs team\.postgres_url"):
        team_postgres_url(plain.team)
    unset = load_config(team_project(tmp_path / "b", digits_folder, "env:MLLIFE_TEST_NO_DB"))
    monkeypatch.delenv("MLLIFE_TEST_NO_DB", raising=False)
    with pytest.raises(ConfigError, match="MLLIFE_TEST_NO_DB is not set"):
        team_postgres_url(unset.team)


def test_team_url_must_be_postgres(tmp_path, digits_folder):
    config_path = team_project(tmp_path / "p", digits_folder, "mysql://db/x")
    with pytest.raises(ConfigError, match=r"team\.postgres_url.*postgresql://"):
        load_config(config_path)
