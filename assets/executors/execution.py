"""How a lifecycle run executes its steps: the run config for each executor."""

from assets.executors.team import celery_execution

__all__ = ["STEP_PRELOAD", "run_config_for"]

#: what the multiprocess executor's fork server imports before forking a step: the
#: graph (which loads torch lazily) and the modules that do load torch
STEP_PRELOAD = (
    "assets.definitions",
    "mllife.models.torch_model",
    "mllife.models.sklearn_model",
    "mllife.models.embedding_model",
    "mllife.preprocess.pixels",
)


def run_config_for(executor: str, max_concurrent: int, log_level: str) -> dict:
    """The run config of a lifecycle run on ``executor`` (in_process, multiprocess, celery)."""
    if executor == "celery":
        execution = celery_execution()
    elif executor == "multiprocess":
        # steps fork from a server that imported the graph and the model code once (no
        # 6 s import of torch and friends in each step)
        start = {"forkserver": {"preload_modules": list(STEP_PRELOAD)}}
        execution = {
            "config": {"multiprocess": {"max_concurrent": max_concurrent, "start_method": start}}
        }
    else:
        execution = {"config": {"in_process": {}}}
    return {
        "loggers": {"console": {"config": {"log_level": log_level}}},
        "execution": execution,
    }
