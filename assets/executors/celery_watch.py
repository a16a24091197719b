"""Noticing a Celery worker that died with a step: Dagster's celery executor waits for
the step's result forever (a killed worker never answers, and with late acks its task
comes back only after the broker's visibility timeout, an hour on Redis). While ``mllife
run`` follows a celery run, it asks the workers that run its steps whether they are
still there (Celery's ``ping``); a worker that misses two rounds in a row is gone, and
its step's task is marked failed in the result backend (the task id is in the run's
event log, ``assets.executors.celery_executor``). The executor then reports the step's
error, skips the steps after it and runs the others, and the run ends failed instead of
hanging; ``mllife run --resume`` re-executes what did not finish. No step after the lost
one ran, so the champion is unchanged.
"""

import time

import dagster as dg

from assets.executors.celery_executor import TASK_ID_LABEL

__all__ = ["CeleryWorkerWatch", "running_steps"]

#: seconds between two pings of the workers, and the misses in a row that mean "gone"
PING_EVERY_S = 5.0
MISSES = 2

_ENDED = {
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
}


def running_steps(events: list) -> dict[str, tuple[str, str]]:
    """step key -> (its Celery task id, the worker executing it), for steps started on a
    worker and not ended."""
    tasks: dict[str, str] = {}
    running: dict[str, tuple[str, str]] = {}
    for event in events:
        if event.event_type == dg.DagsterEventType.ENGINE_EVENT and event.step_key:
            metadata = event.engine_event_data.metadata
            if TASK_ID_LABEL in metadata:
                tasks[event.step_key] = metadata[TASK_ID_LABEL].value
            elif "Celery worker" in metadata and event.step_key in tasks:
                worker = metadata["Celery worker"].value
                running[event.step_key] = (tasks[event.step_key], worker)
        elif event.event_type in _ENDED:
            running.pop(event.step_key, None)
    return running


class CeleryWorkerWatch:
    """Pings the workers of a run's running steps; ``gone(events)`` names a step whose
    worker stopped answering."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery

        self.app = Celery("mllife-watch", broker=broker_url, backend=broker_url)
        self.misses: dict[str, int] = {}
        self.failed: set[str] = set()
        self.pinged = 0.0

    def check(self, events: list, run=None) -> list[str]:
        """Ping the workers of the running steps (every ``PING_EVERY_S``); fail the task of
        each step whose worker missed ``MISSES`` pings in a row. One line per failed step.
        (``run``, the run as the command read it this poll, is not needed: the workers
        themselves are asked.)"""
        running = {s: t for s, t in running_steps(events).items() if t[0] not in self.failed}
        if not running or time.monotonic() - self.pinged < PING_EVERY_S:
            return []
        self.pinged = time.monotonic()
        workers = sorted({worker for _, worker in running.values()})
        replies = self.app.control.ping(destination=workers, timeout=2.0)
        answered = {name for reply in replies for name in reply}
        for worker in workers:
            self.misses[worker] = 0 if worker in answered else self.misses.get(worker, 0) + 1
        lines = []
        for step, (task_id, worker) in sorted(running.items()):
            if self.misses[worker] >= MISSES:
                lines.append(self._fail(step, task_id, worker))
        return lines

    def _fail(self, step: str, task_id: str, worker: str) -> str:
        from celery.exceptions import WorkerLostError

        message = (
            f"the Celery worker {worker} running step {step} stopped answering"
            f" ({MISSES} pings {PING_EVERY_S:g} s apart)"
        )
        # the executor reads this result as the step's: the step fails, then the run;
        # revoked, so the task is dropped if the broker ever delivers it again
        self.app.backend.mark_as_failure(task_id, WorkerLostError(message))
        self.app.control.revoke(task_id)
        self.failed.add(task_id)
        return f"{message}: its step fails; `mllife run --resume` re-executes it"
