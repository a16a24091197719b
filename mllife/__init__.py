"""mllife: the ML lifecycle as code — evaluation, comparison, policy, store and registry.

Scripts import these directly; the Dagster asset graph in ``assets/`` wires them into a
lineage-tracked lifecycle.

>>> import mllife
>>> report = mllife.evaluate([0, 1, 1, 0], [0, 1, 0, 0])
>>> report.accuracy
0.75
"""

from importlib import import_module
from typing import TYPE_CHECKING

from mllife._errors import (
    ArtifactError,
    ChampionChangedError,
    ConfigError,
    DataError,
    MllifeError,
    ProblemError,
    PromotionError,
    ServingError,
    StoreError,
    StoreLockedError,
    TrainingError,
    VersioningError,
)

__version__ = "0.1.0"

# Heavy modules (scipy, duckdb, polars) load on first use, so `mllife --help` and the
# CLI start fast.
_LAZY = {
    "ProjectConfig": "mllife.config.project",
    "load_config": "mllife.config.project",
    "Agreement": "mllife.metrics",
    "Comparison": "mllife.metrics",
    "EvaluationReport": "mllife.metrics",
    "agreement": "mllife.metrics",
    "compare": "mllife.metrics",
    "evaluate": "mllife.metrics",
    "mcnemar_test": "mllife.metrics",
    "Decision": "mllife.promotion.policy",
    "Gate": "mllife.promotion.policy",
    "decide": "mllife.promotion.policy",
    "Store": "mllife.storage.store",
    "DriftReport": "mllife.monitoring.drift",
    "drift": "mllife.monitoring.drift",
}

if TYPE_CHECKING:
    from mllife.config.project import ProjectConfig, load_config
    from mllife.metrics import (
        Agreement,
        Comparison,
        EvaluationReport,
        agreement,
        compare,
        evaluate,
        mcnemar_test,
    )
    from mllife.monitoring.drift import DriftReport, drift
    from mllife.promotion.policy import Decision, Gate, decide
    from mllife.storage.store import Store


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mllife' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Agreement",
    "ArtifactError",
    "ChampionChangedError",
    "Comparison",
    "ConfigError",
    "DataError",
    "Decision",
    "DriftReport",
    "EvaluationReport",
    "Gate",
    "MllifeError",
    "ProblemError",
    "ProjectConfig",
    "PromotionError",
    "ServingError",
    "Store",
    "StoreError",
    "StoreLockedError",
    "TrainingError",
    "VersioningError",
    "agreement",
    "compare",
    "decide",
    "drift",
    "evaluate",
    "load_config",
    "mcnemar_test",
]
