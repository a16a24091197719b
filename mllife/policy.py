"""The promotion policy as data: every gate, its observed value, threshold and verdict.

Gates, in order:

- ``threshold_<metric>``: absolute bars on validation metrics (minima; maxima for
  losses), per class too (``recall:7``).
- ``val_test_agreement``: validation and test accuracy close enough to trust either.
- ``beats_champion``: the change versus the deployed model on the same rows, absolute
  and relative, in the direction that is better for the metric.
- ``significance``: McNemar's test of that change (when configured).
- ``simpler_not_better``: the challenger beats every baseline by the configured margin.
- ``human_level``: accuracy as a share of human-level accuracy (with annotations).
- ``artifact_size`` and ``latency``: budgets on the target hardware (when configured).

With no champion yet only the absolute gates apply, and the decision says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mllife._errors import ConfigError
from mllife.config import LOWER_IS_BETTER, PromotionConfig, parse_policy_metric
from mllife.metrics import Agreement, Comparison, EvaluationReport

__all__ = ["Decision", "Gate", "decide", "gate_names", "threshold_gate_name"]

FIXED_GATES = (
    "val_test_agreement",
    "beats_champion",
    "significance",
    "simpler_not_better",
    "human_level",
    "known_problems",
    "artifact_size",
    "latency",
)


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    observed: float | None
    threshold: float | None
    reason: str
    #: False when the gate does not apply (no champion yet, budget not set): it passes
    applies: bool = True


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


def threshold_gate_name(metric: str) -> str:
    return "threshold_" + metric.replace(":", "_").replace("-", "_")


def gate_names(policy: PromotionConfig) -> list[str]:
    """Every gate this policy produces, in order (the asset checks on ``challenger``)."""
    return [threshold_gate_name(m) for m in policy.all_thresholds()] + list(FIXED_GATES)


def _observed(report: EvaluationReport, metric: str, key: str) -> float:
    name, label = parse_policy_metric(metric)
    if label is None:
        if name not in report.metrics:
            raise ConfigError(
                f"promotion.thresholds.{key}: metric {name!r} needs"
                " probabilities, which this model's evaluation lacks"
            )
        return report.metrics[name]
    by_label = {str(c.label): c for c in report.per_class}
    if label not in by_label:
        raise ConfigError(
            f"promotion.thresholds.{key}: class {label!r} is not in the data; classes are"
            f" {sorted(by_label)}"
        )
    return getattr(by_label[label], name)


def _threshold_gate(report: EvaluationReport, metric: str, bar: float) -> Gate:
    value = _observed(report, metric, metric)
    lower = parse_policy_metric(metric)[0] in LOWER_IS_BETTER
    ok = value <= bar if lower else value >= bar
    relation = ("<=" if ok else ">") if lower else (">=" if ok else "<")
    kind = "maximum" if lower else "minimum"
    return Gate(
        threshold_gate_name(metric),
        ok,
        value,
        bar,
        f"validation {metric} {value:.4f} {relation} {kind} {bar:.4f}",
    )


def _budget_gate(
    name: str, what: str, observed: float | None, budget: float | None, unit: str
) -> Gate:
    """A resource budget: passes when unset (reporting the measurement) or when met."""
    measured = "" if observed is None else f" ({what} {observed:.2f} {unit})"
    if budget is None:
        return Gate(
            name, True, observed, None, f"no {name.replace('_', ' ')} budget set" + measured, False
        )
    ok = observed is not None and observed <= budget
    shown = "not measured" if observed is None else f"{observed:.2f} {unit}"
    return Gate(
        name, ok, observed, budget, f"{what} {shown} {'<=' if ok else '>'} budget {budget:g} {unit}"
    )


def _problems_gate(policy, scores, champion_scores, minimums) -> Gate:
    if not scores:
        return Gate("known_problems", True, None, None, "no known problems scored", False)
    failures, notes = [], []
    for problem, score in sorted(scores.items()):
        bar = minimums.get(problem)
        if bar is not None and score < bar:
            failures.append(f"{problem} {score:.2f} < its minimum {bar:.2f}")
        if champion_scores and policy.max_problem_regression is not None:
            before = champion_scores.get(problem)
            if before is not None and score < before - policy.max_problem_regression:
                failures.append(
                    f"{problem} regressed {before:.2f} -> {score:.2f}"
                    f" (more than {policy.max_problem_regression:.2f})"
                )
        notes.append(f"{problem} {score:.2f}")
    worst = min(scores.values())
    applies = bool(minimums) or (
        bool(champion_scores) and policy.max_problem_regression is not None
    )
    reason = "; ".join(failures) if failures else "known problems: " + ", ".join(notes)
    return Gate("known_problems", not failures, worst, None, reason, applies)


def decide(
    *,
    policy: PromotionConfig,
    challenger_hash: str,
    validation: EvaluationReport,
    agreement: Agreement,
    champion_hash: str | None,
    comparison: Comparison | None,
    challenger_is_baseline: bool = False,
    baseline_scores: dict[str, float] | None = None,
    artifact_bytes: int | None = None,
    latency_p95_ms: float | None = None,
    human_accuracy: float | None = None,
    problem_scores: dict[str, float] | None = None,
    champion_problem_scores: dict[str, float] | None = None,
    problem_minimums: dict[str, float] | None = None,
) -> Decision:
    """Apply every gate of ``policy`` to a challenger.

    ``comparison`` is challenger versus champion on the same validation rows (None when
    there is no champion, or the challenger *is* the champion).
    """
    gates = [_threshold_gate(validation, m, bar) for m, bar in policy.all_thresholds().items()]
    tolerance = policy.setting("max_val_test_gap")
    gap_ok = agreement.gap <= tolerance
    gates.append(
        Gate(
            "val_test_agreement",
            gap_ok,
            agreement.gap,
            tolerance,
            agreement.reason
            if agreement.tolerance == tolerance
            else f"validation and test accuracy differ by {agreement.gap:.4f}"
            f" ({'<=' if gap_ok else '>'} {tolerance:.4f})",
        )
    )

    metric = policy.selection_metric
    if champion_hash is None:
        gates.append(
            Gate(
                "beats_champion",
                True,
                None,
                None,
                "no champion yet (first run): only the absolute gates apply",
                False,
            )
        )
        gates.append(
            Gate(
                "significance",
                True,
                None,
                policy.setting("max_p_value"),
                "no champion yet: nothing to compare with",
                False,
            )
        )
    elif champion_hash == challenger_hash:
        gates.append(
            Gate(
                "beats_champion", True, 0.0, None, "the challenger is the deployed champion", False
            )
        )
        gates.append(
            Gate(
                "significance",
                True,
                None,
                policy.setting("max_p_value"),
                "the challenger is the deployed champion",
                False,
            )
        )
    else:
        if comparison is None:
            raise ValueError("a champion exists, so decide() needs the comparison with it")
        delta = comparison.deltas[metric]
        champion_value = comparison.champion[metric]
        need = max(
            policy.setting("min_improvement"), policy.min_relative_improvement * abs(champion_value)
        )
        ok = delta >= need and (delta > 0 or need < 0)
        gates.append(
            Gate(
                "beats_champion",
                ok,
                delta,
                need,
                f"validation {metric} {comparison.challenger[metric]:.4f} vs champion"
                f" {champion_value:.4f}: change {delta:+.4f} {'>=' if ok else '<'} required"
                f" {need:+.4f}" + ("" if ok or delta > 0 else " (no improvement)"),
            )
        )
        max_p = policy.setting("max_p_value")
        p = comparison.mcnemar_p_value
        if max_p is None:
            gates.append(
                Gate(
                    "significance",
                    True,
                    p,
                    None,
                    f"McNemar p={p:.3g} (not required by the policy)",
                    False,
                )
            )
        else:
            gates.append(
                Gate(
                    "significance",
                    p <= max_p,
                    p,
                    max_p,
                    f"McNemar p={p:.3g} {'<=' if p <= max_p else '>'} {max_p:g}"
                    f" ({len(comparison.wrong_to_right)} fixed,"
                    f" {len(comparison.right_to_wrong)} broken)",
                )
            )

    ours = validation.metrics[metric]
    baselines = baseline_scores or {}
    if challenger_is_baseline or not baselines:
        gates.append(
            Gate(
                "simpler_not_better",
                True,
                None,
                policy.simpler_margin,
                "the challenger is itself a baseline"
                if challenger_is_baseline
                else "no baselines were trained",
                False,
            )
        )
    else:
        best_name, best = max(baselines.items(), key=lambda kv: kv[1])
        margin = ours - best
        ok = margin >= policy.simpler_margin
        gates.append(
            Gate(
                "simpler_not_better",
                ok,
                margin,
                policy.simpler_margin,
                f"challenger {metric} {ours:.4f} vs simpler {best_name} {best:.4f}:"
                f" margin {margin:+.4f} {'>=' if ok else '<'}"
                f" {policy.simpler_margin:.4f}",
            )
        )

    accuracy = validation.accuracy
    share = None if not human_accuracy else accuracy / human_accuracy
    if policy.min_share_of_human is None or human_accuracy is None:
        note = (
            ""
            if share is None
            else (f" (accuracy {accuracy:.4f} is {share:.0%} of human-level {human_accuracy:.4f})")
        )
        gates.append(
            Gate("human_level", True, share, None, "no human-level target set" + note, False)
        )
    else:
        ok = share >= policy.min_share_of_human
        gates.append(
            Gate(
                "human_level",
                ok,
                share,
                policy.min_share_of_human,
                f"validation accuracy {accuracy:.4f} is {share:.1%} of human-level"
                f" {human_accuracy:.4f} ({'>=' if ok else '<'}"
                f" {policy.min_share_of_human:.0%})",
            )
        )

    gates.append(
        _problems_gate(
            policy, problem_scores or {}, champion_problem_scores, problem_minimums or {}
        )
    )

    size_mb = None if artifact_bytes is None else artifact_bytes / 2**20
    gates.append(_budget_gate("artifact_size", "artifact", size_mb, policy.max_artifact_mb, "MB"))
    gates.append(
        _budget_gate(
            "latency",
            "p95 single-prediction latency",
            latency_p95_ms,
            policy.max_p95_latency_ms,
            "ms",
        )
    )

    return Decision(
        passed=all(g.passed for g in gates),
        gates=tuple(gates),
        challenger_hash=challenger_hash,
        champion_hash=champion_hash,
        first_run=champion_hash is None,
        measurements={
            "artifact_mb": size_mb,
            "latency_p95_ms": latency_p95_ms,
            f"validation_{metric}": ours,
        },
    )
