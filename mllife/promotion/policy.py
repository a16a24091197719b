"""The promotion policy as data: every gate, its observed value, threshold and verdict.

Gates, in order:

- ``threshold_<metric>``: absolute bars on the gate split's metrics (minima; maxima for
  losses), per class too (``recall:7``). ``[promotion] gate_split`` says which split the
  absolute gates and the comparison with the champion read: the sealed test set by
  default (it chose nothing, so it carries no winner's curse), validation on request.
  Selection among candidates always reads validation.
- ``val_test_agreement``: validation and test accuracy close enough to trust either.
- ``beats_champion``: the change versus the deployed model on the same rows, absolute
  and relative, in the direction that is better for the metric.
- ``significance``: McNemar's test of that change (when configured).
- ``simpler_not_better``: the challenger beats every baseline by the configured margin.
- ``human_level``: accuracy as a share of human-level accuracy (with annotations).
- ``artifact_size`` and ``latency``: budgets on the target hardware (when configured).

With no champion yet only the absolute gates apply, and the decision says so. Each gate
is one function in the registry of ``mllife.promotion.gates``, which also gives the
Dagster checks and the report their names and descriptions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mllife.config.project import PromotionConfig
from mllife.metrics import Agreement, Comparison, EvaluationReport
from mllife.promotion.gates import Evidence, Gate, gate_specs, threshold_gate_name

__all__ = [
    "Decision",
    "Gate",
    "decide",
    "gate_descriptions",
    "gate_names",
    "threshold_gate_name",
]


@dataclass(frozen=True)
class Decision:
    passed: bool
    gates: tuple[Gate, ...]
    challenger_hash: str
    champion_hash: str | None
    #: with no champion yet only the absolute gates apply
    first_run: bool
    measurements: dict[str, Any] = field(default_factory=dict)

    @property
    def already_champion(self) -> bool:
        return self.champion_hash == self.challenger_hash

    def gate(self, name: str) -> Gate:
        return next(g for g in self.gates if g.name == name)

    def failed_gates(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]

    def summary(self) -> str:
        if not self.passed:
            return "not promoted: " + "; ".join(g.reason for g in self.failed_gates())
        if self.already_champion:
            return "unchanged: the challenger is already the champion"
        if self.first_run:
            return "promoted (first champion; only the absolute gates applied)"
        return "promoted: passed every gate"

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "first_run": self.first_run,
            "challenger_hash": self.challenger_hash,
            "champion_hash": self.champion_hash,
            "measurements": self.measurements,
            "gates": [asdict(g) for g in self.gates],
        }


def gate_names(policy: PromotionConfig) -> list[str]:
    """Every gate this policy produces, in order (the asset checks on ``challenger``)."""
    return [spec.name for spec in gate_specs(policy)]


def gate_descriptions(policy: PromotionConfig) -> dict[str, str]:
    """Each gate's one-sentence description, in order (Dagster checks, report)."""
    return {spec.name: spec.description for spec in gate_specs(policy)}


def decide(
    *,
    policy: PromotionConfig,
    challenger_hash: str,
    validation: EvaluationReport,
    agreement: Agreement,
    champion_hash: str | None,
    comparison: Comparison | None,
    test: EvaluationReport | None = None,
    challenger_is_baseline: bool = False,
    baseline_scores: dict[str, float] | None = None,
    artifact_bytes: int | None = None,
    latency_p95_ms: float | None = None,
    human_accuracy: float | None = None,
    problem_scores: dict[str, float] | None = None,
    champion_problem_scores: dict[str, float] | None = None,
    problem_minimums: dict[str, float] | None = None,
    group_gaps: dict | None = None,
) -> Decision:
    """Apply every gate of ``policy`` (``mllife.promotion.gates``) to a challenger.

    ``comparison`` is challenger versus champion on the same rows of the gate split
    (``policy.gate_split``; None when there is no champion, or the challenger *is* the
    champion). ``test`` is the challenger's report on the sealed test set, which the
    absolute gates read unless ``policy.gate_split`` is "validation". ``group_gaps``: per
    ``[fairness] groups`` column, its largest accuracy gap on the gate split
    (``mllife.evaluation.groups.group_quality``).
    """
    if policy.gate_split == "test" and test is None:
        raise ValueError(
            "promotion.gate_split is 'test': decide() needs the challenger's test report"
            ' (test=...), or set gate_split = "validation"'
        )
    gated = test if policy.gate_split == "test" else validation
    size_mb = None if artifact_bytes is None else artifact_bytes / 2**20
    evidence = Evidence(
        policy=policy,
        challenger_hash=challenger_hash,
        validation=validation,
        gated=gated,
        agreement=agreement,
        champion_hash=champion_hash,
        comparison=comparison,
        challenger_is_baseline=challenger_is_baseline,
        baseline_scores=baseline_scores or {},
        artifact_mb=size_mb,
        latency_p95_ms=latency_p95_ms,
        human_accuracy=human_accuracy,
        problem_scores=problem_scores or {},
        champion_problem_scores=champion_problem_scores,
        problem_minimums=problem_minimums or {},
        group_gaps=group_gaps or {},
    )
    gates = tuple(spec.check(evidence) for spec in gate_specs(policy))
    metric = policy.selection_metric
    return Decision(
        passed=all(g.passed for g in gates),
        gates=gates,
        challenger_hash=challenger_hash,
        champion_hash=champion_hash,
        first_run=champion_hash is None,
        measurements={
            "artifact_mb": size_mb,
            "latency_p95_ms": latency_p95_ms,
            f"validation_{metric}": validation.metrics[metric],
            f"{policy.gate_split}_{metric}": gated.metrics[metric],
            "gate_split": policy.gate_split,
        },
    )
