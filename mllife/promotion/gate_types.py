"""What a gate reads (:class:`Evidence`) and what it says (:class:`Gate`), shared by the
gate functions (``gates``, ``champion_gates``) and the decision (``policy``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mllife.config.policy import PromotionConfig
from mllife.evaluation.groups import GroupGap
from mllife.metrics import Agreement, Comparison, EvaluationReport

__all__ = ["Evidence", "Gate"]


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    observed: float | None
    threshold: float | None
    reason: str
    #: False when the gate does not apply (no champion yet, budget not set): it passes
    applies: bool = True
    #: the split whose rows the gate read (None: it reads no split)
    split: str | None = None


@dataclass(frozen=True)
class Evidence:
    """Everything a gate may read about one challenger."""

    policy: PromotionConfig
    challenger_hash: str
    validation: EvaluationReport
    #: the report the absolute gates read: ``policy.gate_split``'s
    gated: EvaluationReport
    agreement: Agreement
    champion_hash: str | None
    #: challenger versus champion on the same rows (None: no champion, or it *is* it)
    comparison: Comparison | None
    challenger_is_baseline: bool
    baseline_scores: dict[str, float]
    artifact_mb: float | None
    latency_p95_ms: float | None
    human_accuracy: float | None
    problem_scores: dict[str, float]
    champion_problem_scores: dict[str, float] | None
    problem_minimums: dict[str, float]
    #: per [fairness] groups column: the largest accuracy gap between two of its groups
    #: on the gate split (None: fewer than two groups large enough to compare)
    group_gaps: dict[str, GroupGap | None] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return self.policy.selection_metric

    @property
    def split(self) -> str:
        return self.policy.gate_split
