"""The team profile's PostgreSQL database: its URL from ``[team]`` and a check, before a
run is submitted, that it answers (a run must not start against a database that is
down: Dagster would fail deep inside the run worker with a driver traceback)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from mllife._errors import ConfigError, ServiceError

__all__ = ["check_postgres", "describe_url", "for_dagster", "team_postgres_url"]

SETTING = "team.postgres_url"


def team_postgres_url(team) -> str:
    """The database URL of ``[team]`` (a ``TeamConfig``), ``env:NAME`` resolved."""
    value = team.postgres_url
    if value is None:
        raise ConfigError(
            f"the team profile needs {SETTING} in mllife.toml: a"
            " postgresql://user:password@host:port/database URL, or env:NAME"
        )
    if value.startswith("env:"):
        name = value[4:]
        resolved = os.environ.get(name)
        if not resolved:
            raise ConfigError(
                f"{SETTING} is {value!r} but the environment variable {name} is not set"
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
