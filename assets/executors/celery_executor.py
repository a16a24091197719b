"""dagster-celery's executor, with each step's Celery task id recorded in the run's event
log as it is submitted. Celery cannot tell that a worker died with a task (the result
simply never comes); with the task id, ``mllife run`` (``assets.executors.celery_watch``) marks that
task failed in the result backend once its worker stops answering, and the executor then
fails the step and the run the way it fails any step a worker raised on."""

import dagster as dg

from assets.dagster_private import (
    CELERY_CONFIG,
    CeleryExecutor,
    EngineEventData,
    RetryMode,
    core_celery_execution_loop,
    submit_task,
)

__all__ = ["TASK_ID_LABEL", "mllife_celery_executor"]

#: the metadata label of the engine event that names a step's Celery task
TASK_ID_LABEL = "Celery task id"


def _submit_and_record(app, plan_context, step, queue, priority, known_state):
    result = submit_task(app, plan_context, step, queue, priority, known_state)
    plan_context.instance.report_engine_event(
        f'Step "{step.key}" is Celery task {result.id} on queue "{queue}".',
        plan_context.dagster_run,
        EngineEventData({TASK_ID_LABEL: result.id, "queue": queue}),
        step_key=step.key,
    )
    return result


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
