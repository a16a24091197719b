"""The Celery app a team worker runs (``mllife worker`` starts
``celery -A assets.executors.celery_app worker``): dagster-celery's step task on the broker of
``[team] broker_url``. A task names its run's job by module (``assets.definitions``),
which the worker builds from its own checkout's ``mllife.toml`` (``MLLIFE_CONFIG``)."""

import os

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from assets.executors.team import BROKER_VARIABLE, CELERY_SETTINGS

_broker = os.environ[BROKER_VARIABLE]
app = make_app(
    CeleryExecutor.for_cli(
        broker=_broker, backend=_broker, config_source=CELERY_SETTINGS
    ).app_args()
)
execute_plan = create_task(app)
