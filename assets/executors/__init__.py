"""Where steps execute: the run config of each executor (``execution``), the team
profile's services (``team``), and Celery workers (``celery_app``, ``celery_executor``,
``celery_watch``)."""
