"""Classification evaluation: fast, validated, compared against scikit-learn in tests."""

from mllife.metrics._compare import Agreement, Comparison, agreement, compare, mcnemar_test
from mllife.metrics._intervals import difference_interval, wilson_interval
from mllife.metrics._report import (
    ClassBias,
    ClassMetrics,
    ConfusionPair,
    EvaluationReport,
    evaluate,
)

__all__ = [
    "Agreement",
    "ClassBias",
    "ClassMetrics",
    "Comparison",
    "ConfusionPair",
    "EvaluationReport",
    "agreement",
    "compare",
    "difference_interval",
    "evaluate",
    "mcnemar_test",
    "wilson_interval",
]
