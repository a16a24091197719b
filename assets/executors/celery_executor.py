"""dagster-celery's executor, with each step's Celery task id recorded in the run's event
log as it is submitted. Celery cannot tell that a worker died with a task (the result
simply never comes); with the task id, ``mllife run`` (``assets.executors.celery_watch``) marks that
task failed in the result backend once its worker stops answering.

A task that failed on its worker (lost with the worker, or raising outside the step's own
error handling) is reported in the run's event log with its error, and its step left in
an unknown state: the steps downstream of it are skipped, the others still run, and the
run ends failed. dagster-celery itself, on such an error, stops submitting steps but
loops until the plan is complete -- which it never is while independent steps wait --
so the run would never end (dagster-celery 0.29.27, ``core_execution_loop``).
"""

import sys

import dagster as dg
from celery.exceptions import TaskRevokedError

from assets.dagster_private import (
    CELERY_CONFIG,
    CeleryExecutor,
    EngineEventData,
    RetryMode,
    core_celery_execution_loop,
    serializable_error_info_from_exc_info,
    submit_task,
)

__all__ = ["TASK_ID_LABEL", "mllife_celery_executor"]

#: the metadata label of the engine event that names a step's Celery task
TASK_ID_LABEL = "Celery task id"


class _StepTask:
    """A step's Celery result as the execution loop reads it: a task that failed on its
    worker yields no step events (the loop then marks the step's state unknown) after its
    error is written to the run's event log."""

    def __init__(self, result, plan_context, step_key: str) -> None:
        self.result, self.plan_context, self.step_key = result, plan_context, step_key
        self.id = result.id

    def ready(self) -> bool:
        return self.result.ready()

    def revoke(self) -> None:
        self.result.revoke()

    def get(self) -> list:
        try:
            return self.result.get()
        except TaskRevokedError:
            raise  # the loop's own handling: the run was terminated
        except Exception as exc:
            self.plan_context.instance.report_engine_event(
                f'Step "{self.step_key}" failed on its Celery worker ({exc}): the steps after'
                " it are skipped, the run fails, and `mllife run --resume` re-executes it.",
                self.plan_context.dagster_run,
                EngineEventData.engine_error(serializable_error_info_from_exc_info(sys.exc_info())),
                step_key=self.step_key,
            )
            return []


def _submit_and_record(app, plan_context, step, queue, priority, known_state):
    result = submit_task(app, plan_context, step, queue, priority, known_state)
    plan_context.instance.report_engine_event(
        f'Step "{step.key}" is Celery task {result.id} on queue "{queue}".',
        plan_context.dagster_run,
        EngineEventData({TASK_ID_LABEL: result.id, "queue": queue}),
        step_key=step.key,
    )
    return _StepTask(result, plan_context, step.key)


class _RecordingCeleryExecutor(CeleryExecutor):
    def execute(self, plan_context, execution_plan):
        return core_celery_execution_loop(
            plan_context, execution_plan, step_execution_fn=_submit_and_record
        )


@dg.executor(
    name="celery",
    config_schema=CELERY_CONFIG,
    requirements=dg.multiple_process_executor_requirements(),
)
def mllife_celery_executor(init_context):
    """dagster-celery's ``celery_executor``, recording each step's task id."""
    config = init_context.executor_config
    return _RecordingCeleryExecutor(
        broker=config.get("broker"),
        backend=config.get("backend"),
        config_source=config.get("config_source"),
        include=config.get("include"),
        retries=RetryMode.from_config(config["retries"]),
    )
