"""The promotion policy as data: every gate, its observed value, threshold and verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mllife.config import PromotionConfig
from mllife.metrics import Agreement, Comparison

__all__ = ["Decision", "Gate", "decide"]


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    observed: float | None
    threshold: float | None
    reason: str


@dataclass(frozen=True)
class Decision:
    passed: bool
    gates: tuple[Gate, ...]
    challenger_hash: str
    champion_hash: str | None
    #: with no champion yet only the absolute gates apply
    first_run: bool

    @property
    def already_champion(self) -> bool:
        return self.champion_hash == self.challenger_hash

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
            "gates": [asdict(g) for g in self.gates],
        }


def decide(
    *,
    policy: PromotionConfig,
    challenger_hash: str,
    validation_metrics: dict[str, float],
    agreement: Agreement,
    champion_hash: str | None,
    comparison: Comparison | None,
) -> Decision:
    """Apply every gate of ``policy`` to a challenger.

    ``comparison`` is challenger versus champion on the same validation rows (None when
    there is no champion, or the challenger *is* the champion).
    """
    accuracy = validation_metrics["accuracy"]
    gates = [
        Gate(
            "min_accuracy",
            accuracy >= policy.min_accuracy,
            accuracy,
            policy.min_accuracy,
            f"validation accuracy {accuracy:.4f} {'>=' if accuracy >= policy.min_accuracy else '<'}"
            f" baseline {policy.min_accuracy:.4f}",
        ),
        Gate(
            "val_test_agreement",
            agreement.passed,
            agreement.gap,
            agreement.tolerance,
            agreement.reason,
        ),
    ]
    metric = policy.selection_metric
    if champion_hash is None:
        gates.append(
            Gate(
                "beats_champion",
                True,
                None,
                None,
                "no champion yet (first run): only the absolute gates apply",
            )
        )
    elif champion_hash == challenger_hash:
        gates.append(
            Gate(
                "beats_champion",
                True,
                0.0,
                policy.min_improvement,
                "the challenger is the deployed champion",
            )
        )
    else:
        if comparison is None:
            raise ValueError("a champion exists, so decide() needs the comparison with it")
        delta = comparison.deltas[metric]
        ok = delta >= policy.min_improvement
        gates.append(
            Gate(
                "beats_champion",
                ok,
                delta,
                policy.min_improvement,
                f"validation {metric} {comparison.challenger[metric]:.4f} vs champion"
                f" {comparison.champion[metric]:.4f}: change {delta:+.4f}"
                f" {'>=' if ok else '<'} required {policy.min_improvement:+.4f}",
            )
        )
    return Decision(
        passed=all(g.passed for g in gates),
        gates=tuple(gates),
        challenger_hash=challenger_hash,
        champion_hash=champion_hash,
        first_run=champion_hash is None,
    )
