"""mllife: the ML lifecycle as code — evaluation, comparison, policy, store and registry.

Scripts import these directly; the Dagster asset graph in ``assets/`` wires them into a
lineage-tracked lifecycle.

>>> import mllife
>>> report = mllife.evaluate([0, 1, 1, 0], [0, 1, 0, 0])
>>> report.accuracy
0.75
"""

from mllife._errors import (
    ArtifactError,
    ConfigError,
    DataError,
    MllifeError,
    PromotionError,
    StoreError,
    StoreLockedError,
    TrainingError,
    VersioningError,
)
from mllife.config import ProjectConfig, load_config
from mllife.metrics import (
    Agreement,
    Comparison,
    EvaluationReport,
    agreement,
    compare,
    evaluate,
    mcnemar_test,
)
from mllife.policy import Decision, Gate, decide
from mllife.store import Store

__version__ = "0.1.0"

__all__ = [
    "Agreement",
    "ArtifactError",
    "Comparison",
    "ConfigError",
    "DataError",
    "Decision",
    "EvaluationReport",
    "Gate",
    "MllifeError",
    "ProjectConfig",
    "PromotionError",
    "Store",
    "StoreError",
    "StoreLockedError",
    "TrainingError",
    "VersioningError",
    "agreement",
    "compare",
    "decide",
    "evaluate",
    "load_config",
    "mcnemar_test",
]
