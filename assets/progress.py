"""Overall progress of a run, one line per finished step: ``[5/14] candidate_cnn done``.

A Dagster logger (enabled by ``mllife run`` through the run config) that counts the
run's finished steps from the instance's event log, so the count is right with the
multiprocess executor too (each step process has its own logger).
"""

import logging
import sys

import dagster as dg

__all__ = ["progress_logger"]

_FINISHED = {
    dg.DagsterEventType.STEP_SUCCESS: "done",
    dg.DagsterEventType.STEP_FAILURE: "FAILED",
    dg.DagsterEventType.STEP_SKIPPED: "skipped",
}


class _ProgressHandler(logging.Handler):
    def __init__(self, run_id: str, total: int) -> None:
        super().__init__(level=logging.DEBUG)
        self.run_id, self.total = run_id, total

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_event", None)
        if event is None or event.event_type not in _FINISHED or event.step_key is None:
            return
        done = self._finished_steps() | {event.step_key}
        total = max(self.total, len(done))
        word = _FINISHED[event.event_type]
        print(f"[{len(done)}/{total} steps] {event.step_key} {word}", file=sys.stderr, flush=True)

    def _finished_steps(self) -> set[str]:
        instance = dg.DagsterInstance.get()
        records = instance.get_records_for_run(self.run_id, of_type=set(_FINISHED)).records
        return {r.event_log_entry.step_key for r in records if r.event_log_entry.step_key}


@dg.logger(
    config_schema={"total": dg.Field(int, default_value=0, description="steps in the run")},
    description="One line per finished step with the run's overall progress (mllife run).",
)
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.getLogger(f"mllife.progress.{init_context.run_id}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.handlers = [_ProgressHandler(init_context.run_id, init_context.logger_config["total"])]
    return logger
