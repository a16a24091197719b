"""The command-line runtime around the Dagster instance, never inside a step: `mllife run`
(``run``: plan what changed (``memo``), submit through the instance (``launch``), follow
it, summarize (``summary``)) and `mllife status --show-test` (``sealed_test``)."""
