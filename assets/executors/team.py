"""The executors of the team profile (Celery, or Kubernetes Jobs): which executor the
graph is built with, where each step goes, and the run config that names the broker.

The choice is made where the graph is loaded -- the code server of ``mllife run`` and
each worker -- from the environment (``MLLIFE_EXECUTOR``), since a run's steps must be
planned the same way on both sides. The broker URL travels in ``MLLIFE_BROKER_URL``; the
run config only names that variable, so no password is stored with the run.
"""

import os

import dagster as dg

__all__ = [
    "BROKER_VARIABLE",
    "CELERY_SETTINGS",
    "DEFAULT_QUEUE",
    "DEFAULT_STEP_K8S_CONFIG",
    "EXECUTOR_VARIABLE",
    "K8S_CONFIG_TAG",
    "QUEUE_TAG",
    "celery_execution",
    "data_pin",
    "executor_for_environment",
    "training_tags",
    "use_celery",
    "use_team_services",
]

EXECUTOR_VARIABLE = "MLLIFE_EXECUTOR"
BROKER_VARIABLE = "MLLIFE_BROKER_URL"
#: dagster-celery's step tag naming a step's queue, and the queue of untagged steps
QUEUE_TAG = "dagster-celery/queue"
DEFAULT_QUEUE = "dagster"


#: the op tag of dagster-k8s for a step's pod, and the node label GPU nodes carry
K8S_CONFIG_TAG = "dagster-k8s/config"
QUEUE_LABEL = "mllife/queue"
#: every step's pod unless its tags say otherwise (the training steps: dagster-k8s merges
#: their pod_spec_config over this one, key by key): the node labelled for the default
#: queue -- label one node so -- whose steps open the DuckDB store, whose lock holds
#: between processes of one host only
DEFAULT_STEP_K8S_CONFIG = {"pod_spec_config": {"node_selector": {QUEUE_LABEL: DEFAULT_QUEUE}}}


def celery_enabled() -> bool:
    return os.environ.get(EXECUTOR_VARIABLE) == "celery"


def k8s_enabled() -> bool:
    return os.environ.get(EXECUTOR_VARIABLE) == "k8s"


def executor_for_environment() -> dg.ExecutorDefinition | None:
    """dagster-celery's executor under ``MLLIFE_EXECUTOR=celery``, dagster-k8s's Job per
    step under ``k8s`` (``deploy/kubernetes``), else Dagster's default (in-process or
    multiprocess, chosen in the run config)."""
    if k8s_enabled():
        from dagster_k8s import k8s_job_executor

        # namespace, image and secrets come from the K8sRunLauncher (deploy/kubernetes)
        return k8s_job_executor.configured({"step_k8s_config": DEFAULT_STEP_K8S_CONFIG})
    if not celery_enabled():
        return None
    import warnings

    from celery.exceptions import DuplicateTaskNameWarning

    from assets.executors.celery_executor import mllife_celery_executor

    # dagster-celery registers its one task again for every step it submits: the same
    # callable each time, so the warning says nothing to a user
    warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)
    return mllife_celery_executor


def training_tags(queue: str) -> dict:
    """Op tags sending a training step to ``queue``: the Celery queue GPU workers listen
    on, or on Kubernetes the nodes labelled ``mllife/queue=<queue>``."""
    if k8s_enabled():
        return {K8S_CONFIG_TAG: {"pod_spec_config": {"node_selector": {QUEUE_LABEL: queue}}}}
    return {QUEUE_TAG: queue} if celery_enabled() else {}


#: Celery settings for steps that run for minutes: a worker takes a step only when it is
#: free (no prefetching a second one while training), and acknowledges it at the end,
#: so a step whose worker dies is not lost but delivered again
CELERY_SETTINGS = {"worker_prefetch_multiplier": 1, "task_acks_late": True}


def celery_execution() -> dict:
    """The ``execution`` config of a celery run: broker and result backend (the same
    Redis), read by Dagster from the environment."""
    broker = {"env": BROKER_VARIABLE}
    return {"config": {"broker": broker, "backend": broker, "config_source": CELERY_SETTINGS}}


def use_team_services(config) -> None:
    """Check the team's database and storage (a clear error naming the setting rather
    than a driver traceback inside a run) and hand the database URL to Dagster: the code
    server and run workers inherit it; the instance's dagster.yaml names the variable."""
    from mllife.storage.instance_settings import POSTGRES_URL_VARIABLE
    from mllife.storage.services import checked_team_database

    os.environ[POSTGRES_URL_VARIABLE] = checked_team_database(config)


def use_celery(config, profile: str) -> None:
    """Check the broker and hand it, and the choice of executor, to the code server."""
    from mllife._errors import MllifeError
    from mllife.storage.services import check_broker, team_broker_url

    if profile != "team":
        raise MllifeError(
            "--executor celery needs --profile team: the workers report each step to the"
            " team's shared Dagster instance"
        )
    broker = team_broker_url(config.team)
    check_broker(broker)
    os.environ[BROKER_VARIABLE] = broker
    os.environ[EXECUTOR_VARIABLE] = "celery"


def data_pin(config) -> dict[str, str]:
    """Run tags pinning the data for the workers: on team storage with ``[versioning]
    push``, the data's ``.dvc`` file, its data pushed to the remote first (each worker
    pulls that version into its checkout before a step reads a file)."""
    from assets.graph.resources import DATA_PIN_TAG
    from mllife.storage.team_data import publish_data

    if config.team_storage is None or not config.versioning.push:
        return {}
    pin = publish_data(config, remote=config.versioning.remote or "")
    return {} if pin is None else {DATA_PIN_TAG: pin}
