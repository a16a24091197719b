"""The settings of a project's Dagster instance (``.mllife/dagster/dagster.yaml``).

Written once when missing, then the user's to edit: a team moves the storage to
PostgreSQL, a queue in front of the launcher, or another launcher here, not in code.
Plain text, so the library writes it without importing Dagster.
"""

from __future__ import annotations

from pathlib import Path

from mllife.storage.files import write_atomically

__all__ = ["INSTANCE_SETTINGS", "write_instance_settings"]

INSTANCE_SETTINGS = """\
# The Dagster instance of this mllife project. `mllife run`, `mllife ui`, schedules and
# sensors all submit their runs here. Edit freely: mllife writes this file only when it
# is missing.
telemetry:
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
"""

#: what earlier versions wrote; upgraded in place since nobody edited it
_EARLIER = ("telemetry:\n  enabled: false\n",)


def write_instance_settings(dagster_home: Path) -> Path:
    """Write the settings when missing (or still an earlier version's default)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    settings = dagster_home / "dagster.yaml"
    if not settings.exists() or settings.read_text() in _EARLIER:
        write_atomically(settings, INSTANCE_SETTINGS.encode())
    return settings
