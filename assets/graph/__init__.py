"""The Dagster definitions of the lifecycle, one module per stage (data, training,
evaluation, problems, deployment, rollout, monitoring, reports, versioning), with the
sensors, the resources, the step-output store (``step_outputs``: values passed between
steps, not ``mllife.storage``'s metrics store) and the code versions. Nothing here runs
the command line or an executor: those are ``assets.runtime`` and ``assets.executors``,
which may import this package, never the other way round."""
