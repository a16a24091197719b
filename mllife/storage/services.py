"""The team profile's services -- the PostgreSQL database of the Dagster instance and the
Celery broker -- their URLs from ``[team]``, and checks, before a run is submitted, that
they answer (a run must not start against a service that is down: Dagster would fail
deep inside the run worker with a driver traceback)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from mllife._errors import ConfigError, ServiceError

__all__ = [
    "check_broker",
    "check_step_outputs",
    "check_storage",
    "check_team_storage",
    "checked_team_database",
    "check_postgres",
    "describe_url",
    "for_dagster",
    "team_broker_url",
    "team_postgres_url",
]

SETTING = "team.postgres_url"
BROKER_SETTING = "team.broker_url"


def team_postgres_url(team) -> str:
    """The database URL of ``[team]`` (a ``TeamConfig``), ``env:NAME`` resolved."""
    return _resolved(
        team.postgres_url, SETTING, "a postgresql://user:password@host:port/database URL"
    )


def team_broker_url(team) -> str:
    """The Celery broker URL of ``[team]``, ``env:NAME`` resolved."""
    return _resolved(team.broker_url, BROKER_SETTING, "a redis://host:port/db URL")


def _resolved(value: str | None, setting: str, shape: str) -> str:
    if value is None:
        raise ConfigError(f"the team profile needs {setting} in mllife.toml: {shape}, or env:NAME")
    if value.startswith("env:"):
        name = value[4:]
        resolved = os.environ.get(name)
        if not resolved:
            raise ConfigError(
                f"{setting} is {value!r} but the environment variable {name} is not set"
            )
        return resolved
    return value


def for_dagster(url: str) -> str:
    """The URL with the driver named: SQLAlchemy 2.1 reads a bare ``postgresql://`` as
    psycopg 3, while dagster-postgres installs psycopg2."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg2://{rest}" if scheme in ("postgresql", "postgres") else url


def describe_url(url: str) -> str:
    """``host:port/database`` of a URL, without user or password (safe to print)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"


def check_postgres(url: str, *, timeout_seconds: int = 5) -> None:
    """Connect once and run ``SELECT 1``; a :class:`ServiceError` naming the server and
    the setting when it does not answer."""
    import psycopg2  # installed with dagster-postgres; only the team profile needs it

    try:
        connection = psycopg2.connect(url, connect_timeout=timeout_seconds)
    except psycopg2.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ServiceError(
            f"PostgreSQL at {describe_url(url)} ({SETTING}) is not reachable: {reason};"
            " start the database or fix the setting"
        ) from None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()


def check_broker(url: str, *, timeout_seconds: float = 5) -> None:
    """PING the Redis broker; a :class:`ServiceError` naming it and the setting."""
    import redis  # installed with dagster-celery[redis]; only the celery executor needs it

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_seconds)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ServiceError(
            f"the Celery broker at {describe_url(url)} ({BROKER_SETTING}) is not reachable:"
            f" {exc}; start Redis or fix the setting"
        ) from None
    finally:
        client.close()


def check_storage(folder: Path) -> None:
    """Create ``folder`` if needed and write a file there; a :class:`ServiceError` naming
    it and ``team.storage`` when that fails (not mounted, read-only, no permission)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mllife-probe-"):
            pass
    except OSError as exc:
        raise ServiceError(
            f"the shared storage {folder} (team.storage) is not writable:"
            f" {exc.strerror or exc}; mount it or fix the setting"
        ) from None


def check_step_outputs(url: str) -> None:
    """Write and delete a probe under the step outputs' folder or URL (``[team]
    step_outputs``); a :class:`ServiceError` naming it when the filesystem's package is
    missing, the bucket is unreachable or writing is refused."""
    from upath import UPath

    try:
        base = UPath(url)
        base.mkdir(parents=True, exist_ok=True)
        probe = base / f".mllife-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except ImportError as exc:  # fsspec names the package: "Install s3fs to access S3"
        raise ServiceError(
            f"the step outputs at {url} (team.step_outputs) need a filesystem package that"
            f" is not installed: {exc}"
        ) from None
    except (OSError, ValueError) as exc:
        raise ServiceError(
            f"the step outputs at {url} (team.step_outputs) are not writable: {exc};"
            " check the URL, its credentials and permissions"
        ) from None


def check_team_storage(config) -> None:
    """The shared folder (``[team] storage``) and, when set apart, the step outputs'
    folder or URL (``[team] step_outputs``) of a ``ProjectConfig`` in the team profile."""
    if config.team_storage is not None:
        check_storage(config.team_storage)
    if config.team.step_outputs is not None:
        check_step_outputs(config.steps_url)


def checked_team_database(config) -> str:
    """The team's database URL as Dagster takes it, after checking that the database
    answers and the team's storage is writable (``mllife run`` and ``mllife worker``)."""
    url = team_postgres_url(config.team)
    check_postgres(url)
    check_team_storage(config)
    return for_dagster(url)
