"""The settings of a project's Dagster instance (``.mllife/dagster/dagster.yaml``).

Written once when missing, then the user's to edit: a team moves the storage to
PostgreSQL, a queue in front of the launcher, or another launcher here, not in code.
Plain text, so the library writes it without importing Dagster.
"""

from __future__ import annotations

from pathlib import Path

from mllife.storage.files import write_atomically

__all__ = [
    "INSTANCE_SETTINGS",
    "POSTGRES_URL_VARIABLE",
    "PROFILES",
    "TEAM_STORAGE",
    "instance_home",
    "write_instance_settings",
]

#: ``local``: SQLite files under ``.mllife/dagster``; ``team``: PostgreSQL ([team])
PROFILES = ("local", "team")

#: the environment variable through which the team profile hands Dagster its database
POSTGRES_URL_VARIABLE = "MLLIFE_POSTGRES_URL"

INSTANCE_SETTINGS = """\
# The Dagster instance of this mllife project. `mllife run`, `mllife ui`, schedules and
# sensors all submit their runs here. Edit freely: mllife writes this file only when it
# is missing.
telemetry:
  enabled: false
# no newsletter and onboarding dialog over the UI
nux:
  enabled: false
# Runs start as soon as they are submitted; the default launcher starts each run's
# worker process from the project's code server. (A queue -- QueuedRunCoordinator, the
# `run_queue` setting -- needs the Dagster daemon running: `mllife ui` starts one.)
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
# A run whose worker process dies is marked failed by the code server that launched it
# (or, when that server died too, by the next `mllife run`); the pool slots of ended runs
# are freed after free_slots_after_run_end_seconds. The Dagster daemon (`mllife ui`)
# and every `mllife run` while it follows its run do this monitoring.
run_monitoring:
  enabled: true
  start_timeout_seconds: 300
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  free_slots_after_run_end_seconds: 5
# Steps that write the metrics store, run DVC or switch the champion each name a pool
# (mllife_store, mllife_dvc, mllife_champion); one step per pool at a time, across runs.
concurrency:
  pools:
    granularity: op
    default_limit: 1
# mllife's own warnings (a cache entry that failed its check and was rebuilt...) go into
# the run's log beside the steps' messages
python_logs:
  managed_python_loggers:
    - mllife
"""

TEAM_STORAGE = f"""\
# The team profile: runs, events, schedules and pool slots live in the shared PostgreSQL
# database of mllife.toml's [team] postgres_url, which `mllife run --profile team` and
# `mllife ui --profile team` hand over in {POSTGRES_URL_VARIABLE} (the URL is never
# written here).
storage:
  postgres:
    postgres_url:
      env: {POSTGRES_URL_VARIABLE}
"""

#: what earlier versions wrote; upgraded in place since nobody edited it
_NUX = "# no newsletter and onboarding dialog over the UI\nnux:\n  enabled: false\n"
#: the settings before the onboarding dialog was turned off (upgraded in place)
_PREVIOUS_SETTINGS = INSTANCE_SETTINGS.replace(_NUX, "")
_EARLIER = (
    "telemetry:\n  enabled: false\n",
    _PREVIOUS_SETTINGS,
    _PREVIOUS_SETTINGS + TEAM_STORAGE,
)


def instance_home(state_dir: Path, profile: str) -> Path:
    """The Dagster home of a profile: ``.mllife/dagster`` or ``.mllife/dagster-team``.
    Separate folders, so switching profiles never mixes a SQLite run history with the
    team's."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    return state_dir / ("dagster" if profile == "local" else f"dagster-{profile}")


def write_instance_settings(dagster_home: Path, *, profile: str = "local") -> Path:
    """Write the settings when missing (or still an earlier version's default)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    settings = dagster_home / "dagster.yaml"
    text = INSTANCE_SETTINGS + (TEAM_STORAGE if profile == "team" else "")
    if not settings.exists() or settings.read_text() in _EARLIER:
        write_atomically(settings, text.encode())
    return settings
