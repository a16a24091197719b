"""The promotion policy's configuration: which gates, how strict, for which metrics."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "LOWER_IS_BETTER",
    "PER_CLASS_METRICS",
    "POLICY_METRICS",
    "RISK_DEFAULTS",
    "PromotionConfig",
    "parse_policy_metric",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: metrics a policy may name; the ones in LOWER_IS_BETTER are maxima, the rest minima
POLICY_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
    "roc_auc",
    "log_loss",
    "brier_score",
    "expected_calibration_error",
    "top_2_accuracy",
    "top_3_accuracy",
    "top_5_accuracy",
)
LOWER_IS_BETTER = frozenset({"log_loss", "brier_score", "expected_calibration_error"})
PER_CLASS_METRICS = ("precision", "recall", "f1")
#: defaults by risk level: a model that decides must clear a higher bar than one that
#: suggests (explicit settings always win). Both promote only on an improvement chance
#: does not explain (``evidence = "interval"``). "suggest" trades a false promotion now
#: and then (about 1 in 40 when the two models are equally good) for taking a real gain
#: as soon as the data shows it; "decide" waits for a gain of half a point beyond chance,
#: McNemar's p <= 0.05 and closer validation/test agreement, so small real gains wait
#: for more labelled data.
RISK_DEFAULTS = {
    "suggest": {"max_val_test_gap": 0.05, "min_improvement": 0.0, "max_p_value": None},
    "decide": {"max_val_test_gap": 0.03, "min_improvement": 0.005, "max_p_value": 0.05},
}


def parse_policy_metric(name: str) -> tuple[str, str | None]:
    """``"accuracy"`` -> ("accuracy", None); ``"recall:7"`` -> ("recall", "7")."""
    if ":" in name:
        metric, _, label = name.partition(":")
        if metric not in PER_CLASS_METRICS or not label:
            raise ValueError(
                f"{name!r}: a per-class threshold is <metric>:<class> with metric one of"
                f" {PER_CLASS_METRICS}"
            )
        return metric, label
    if name not in POLICY_METRICS:
        import difflib

        close = difflib.get_close_matches(name, POLICY_METRICS, n=2)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise ValueError(
            f"unknown metric {name!r}; {hint}known: {', '.join(POLICY_METRICS)},"
            " or precision/recall/f1:<class>"
        )
    return name, None


class PromotionConfig(_Section):
    """The gates a challenger must pass to become champion."""

    #: Picks the challenger among candidates, on the validation split (never test).
    selection_metric: Literal["accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"] = (
        "macro_f1"
    )
    #: "suggest" (a person acts on the output) or "decide" (the model acts): "decide"
    #: tightens the defaults of max_val_test_gap, min_improvement and max_p_value.
    risk: Literal["suggest", "decide"] = "suggest"
    #: The split the absolute bars, the human-level share and the comparison with the
    #: champion read: "test" (default) gates on the sealed test set, which chose nothing,
    #: so its numbers carry no winner's curse (each read is recorded); "validation" for
    #: projects whose test set is too small or worn out. Selection, tuning and the
    #: baselines' margin always read validation.
    gate_split: Literal["test", "validation"] = "test"
    #: Absolute bars on the gate split's metrics: minima, or maxima for log_loss,
    #: brier_score and expected_calibration_error. Per class: "recall:7" = 0.9.
    thresholds: dict[str, float] = Field(default_factory=dict)
    #: Shorthand for thresholds.accuracy.
    min_accuracy: float | None = Field(default=None, ge=0, le=1)
    #: Largest allowed |validation - test| accuracy difference.
    max_val_test_gap: float | None = Field(default=None, ge=0, le=1)
    #: The challenger must beat the champion's selection metric by at least this much
    #: (absolute), and by ``min_relative_improvement`` of the champion's value.
    min_improvement: float | None = Field(default=None, ge=-1, le=1)
    min_relative_improvement: float = Field(default=0.0, ge=-1, le=10)
    #: How sure the comparison with the champion must be. "interval" (default): the lower
    #: bound of the paired 95% bootstrap interval of the change in the selection metric
    #: must be above min_improvement (at or above it when the margin is not 0; a negative
    #: margin makes it a non-inferiority test), so a difference chance explains is not
    #: promoted. "point": the observed change alone, however few rows differ.
    evidence: Literal["interval", "point"] = "interval"
    #: McNemar's test of challenger vs champion on the same rows: p must be <= this.
    max_p_value: float | None = Field(default=None, gt=0, le=1)
    #: "A simpler model is not better": the challenger must beat every baseline's
    #: selection metric by at least this margin (baselines themselves pass).
    simpler_margin: float = Field(default=0.0, ge=0, le=1)
    #: Budgets on the target hardware: artifact size and p95 single-prediction latency.
    #: With data.annotations: validation accuracy must reach this share of human-level
    #: accuracy (0.95 = "95% as good as a person").
    min_share_of_human: float | None = Field(default=None, gt=0, le=2)
    #: Known problems: a challenger may not score more than this below the champion on
    #: any problem (each problem's own min_score is always enforced).
    max_problem_regression: float | None = Field(default=None, ge=0, le=1)
    max_artifact_mb: float | None = Field(default=None, gt=0)
    max_p95_latency_ms: float | None = Field(default=None, gt=0)
    #: [fairness] groups: the largest accuracy gap between two groups of a column that a
    #: challenger may show on the gate split beyond chance (the gap's 95% interval lies
    #: wholly above this: refused); unset, the gaps are reported only
    max_group_gap: float | None = Field(default=None, ge=0, le=1)
    #: reads of one split version's sealed test set (the challenger's and the champion's
    #: each run) past which the report and `mllife status` warn that it is worn out
    max_test_reads: int | None = Field(default=50, ge=1)

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            parse_policy_metric(name)
        return value

    def setting(self, name: str):
        """An explicit setting, else the default for the risk level."""
        explicit = getattr(self, name)
        return explicit if explicit is not None else RISK_DEFAULTS[self.risk][name]

    def all_thresholds(self) -> dict[str, float]:
        merged = dict(self.thresholds)
        if self.min_accuracy is not None:
            merged.setdefault("accuracy", self.min_accuracy)
        return merged
