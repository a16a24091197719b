"""The promotion policy's gates: one small function each, in one registry.

:data:`FIXED_GATES` (plus one threshold gate per configured bar, see
:func:`gate_specs`) is the single list that ``decide`` runs, the Dagster asset checks on
``challenger`` are declared from (names and descriptions), and the report's gate table
is written from. To add a gate: write a function ``Evidence -> Gate`` and append a
:class:`GateSpec` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mllife._errors import ConfigError
from mllife.config.policy import LOWER_IS_BETTER, PromotionConfig, parse_policy_metric
from mllife.metrics import EvaluationReport
from mllife.promotion.champion_gates import beats_champion, significance
from mllife.promotion.gate_types import Evidence, Gate

__all__ = ["FIXED_GATES", "Evidence", "Gate", "GateSpec", "gate_specs", "threshold_gate_name"]


@dataclass(frozen=True)
class GateSpec:
    name: str
    #: one sentence for the Dagster check and the report: what the gate asks
    description: str
    check: Callable[[Evidence], Gate]


def threshold_gate_name(metric: str) -> str:
    return "threshold_" + metric.replace(":", "_").replace("-", "_")


def _observed(report: EvaluationReport, metric: str) -> float:
    name, label = parse_policy_metric(metric)
    if label is None:
        if name not in report.metrics:
            raise ConfigError(
                f"promotion.thresholds.{metric}: metric {name!r} needs"
                " probabilities, which this model's evaluation lacks"
            )
        return report.metrics[name]
    by_label = {str(c.label): c for c in report.per_class}
    if label not in by_label:
        raise ConfigError(
            f"promotion.thresholds.{metric}: class {label!r} is not in the data; classes are"
            f" {sorted(by_label)}"
        )
    return getattr(by_label[label], name)


def _threshold(metric: str, bar: float, split: str) -> GateSpec:
    lower = parse_policy_metric(metric)[0] in LOWER_IS_BETTER
    kind = "maximum" if lower else "minimum"

    def check(e: Evidence) -> Gate:
        value = _observed(e.gated, metric)
        ok = value <= bar if lower else value >= bar
        relation = ("<=" if ok else ">") if lower else (">=" if ok else "<")
        reason = f"{e.split} {metric} {value:.4f} {relation} {kind} {bar:.4f}"
        interval = e.gated.intervals.get(metric)
        if not ok and interval is not None and interval[0] <= bar <= interval[1]:
            # a small split: the bar lies within what chance allows; say what would tell
            reason += (
                f", but on {e.gated.n_samples} rows its 95% interval [{interval[0]:.4f},"
                f" {interval[1]:.4f}] holds the bar: add labelled data (a larger"
                f" [split] {e.split}) to tell, or review [promotion] thresholds.{metric}"
            )
        return Gate(threshold_gate_name(metric), ok, value, bar, reason, split=e.split)

    return GateSpec(
        threshold_gate_name(metric), f"Absolute bar: {split} {metric}, {kind} {bar:g}.", check
    )


def _agreement(e: Evidence) -> Gate:
    tolerance = e.policy.setting("max_val_test_gap")
    gap, ok = e.agreement.gap, e.agreement.agrees(tolerance)
    compared = "<=" if gap <= tolerance else ">"
    chance = ", within chance at these sizes" if ok and gap > tolerance else ""
    reason = (
        e.agreement.reason
        if e.agreement.tolerance == tolerance
        else f"validation and test accuracy differ by {gap:.4f} ({compared}"
        f" {tolerance:.4f}{chance})"
    )
    return Gate("val_test_agreement", ok, gap, tolerance, reason, split="validation + test")


def _simpler_not_better(e: Evidence) -> Gate:
    margin_needed = e.policy.simpler_margin
    if e.challenger_is_baseline or not e.baseline_scores:
        reason = (
            "the challenger is itself a baseline"
            if e.challenger_is_baseline
            else "no baselines were trained"
        )
        return Gate("simpler_not_better", True, None, margin_needed, reason, False)
    ours = e.validation.metrics[e.metric]
    best_name, best = max(e.baseline_scores.items(), key=lambda kv: kv[1])
    margin = ours - best
    if margin_needed == 0 and margin >= 0:
        # the challenger was chosen over the baselines on this very score: at a margin
        # of 0 the gate cannot fail, so it does not pretend to have checked anything
        reason = (
            f"not informative at simpler_margin = 0: the challenger was chosen over the"
            f" baselines on validation {e.metric}, so it cannot trail them (it leads"
            f" {best_name} by {margin:+.4f}); set [promotion] simpler_margin to require a lead"
        )
        return Gate("simpler_not_better", True, margin, 0.0, reason, False, split="validation")
    ok = margin >= margin_needed
    reason = (
        f"validation {e.metric}: challenger {ours:.4f} vs simpler {best_name} {best:.4f}:"
        f" margin {margin:+.4f} {'>=' if ok else '<'} {margin_needed:.4f}"
    )
    # a choice between candidates, like the selection itself: validation
    return Gate("simpler_not_better", ok, margin, margin_needed, reason, split="validation")


def _human_level(e: Evidence) -> Gate:
    accuracy, human, target = e.gated.accuracy, e.human_accuracy, e.policy.min_share_of_human
    share = None if not human else accuracy / human
    if target is None or human is None:
        note = (
            ""
            if share is None
            else f" (accuracy {accuracy:.4f} is {share:.0%} of human-level {human:.4f})"
        )
        return Gate("human_level", True, share, None, "no human-level target set" + note, False)
    ok = share >= target
    reason = (
        f"{e.split} accuracy {accuracy:.4f} is {share:.1%} of human-level {human:.4f}"
        f" ({'>=' if ok else '<'} {target:.0%})"
    )
    return Gate("human_level", ok, share, target, reason, split=e.split)


def _known_problems(e: Evidence) -> Gate:
    scores, before, minimums = e.problem_scores, e.champion_problem_scores, e.problem_minimums
    regression = e.policy.max_problem_regression
    if not scores:
        return Gate("known_problems", True, None, None, "no known problems scored", False)
    failures, notes = [], []
    for problem, score in sorted(scores.items()):
        bar = minimums.get(problem)
        if bar is not None and score < bar:
            failures.append(f"{problem} {score:.2f} < its minimum {bar:.2f}")
        old = (before or {}).get(problem)
        if regression is not None and old is not None and score < old - regression:
            failures.append(
                f"{problem} regressed {old:.2f} -> {score:.2f} (more than {regression:.2f})"
            )
        notes.append(f"{problem} {score:.2f}")
    applies = bool(minimums) or (bool(before) and regression is not None)
    reason = "; ".join(failures) if failures else "known problems: " + ", ".join(notes)
    return Gate("known_problems", not failures, min(scores.values()), None, reason, applies)


def _budget(name: str, what: str, observed: float | None, budget: float | None, unit: str):
    """A resource budget: passes when unset (reporting the measurement) or when met."""
    measured = "" if observed is None else f" ({what} {observed:.2f} {unit})"
    if budget is None:
        reason = f"no {name.replace('_', ' ')} budget set" + measured
        return Gate(name, True, observed, None, reason, False)
    if observed is None:
        reason = (
            f"{what} not measured: the budget of {budget:g} {unit} was set after the"
            " challenger was chosen; materialize challenger again"
        )
        return Gate(name, False, None, budget, reason)
    ok = observed <= budget
    reason = f"{what} {observed:.2f} {unit} {'<=' if ok else '>'} budget {budget:g} {unit}"
    return Gate(name, ok, observed, budget, reason)


def _artifact_size(e: Evidence) -> Gate:
    return _budget("artifact_size", "artifact", e.artifact_mb, e.policy.max_artifact_mb, "MB")


def _latency(e: Evidence) -> Gate:
    what = "p95 single-prediction latency"
    return _budget("latency", what, e.latency_p95_ms, e.policy.max_p95_latency_ms, "ms")


def _group_gap(e: Evidence) -> Gate:
    """[fairness] groups: no two groups of a column further apart in accuracy than
    max_group_gap beyond chance (the whole 95% interval of the gap above it)."""
    bar = e.policy.max_group_gap
    gaps = {column: gap for column, gap in e.group_gaps.items() if gap is not None}
    if not e.group_gaps:
        return Gate("group_gap", True, None, bar, "no [fairness] groups named", False)
    if not gaps:
        reason = "no column has two groups large enough to compare"
        return Gate("group_gap", True, None, bar, reason, False, split=e.split)
    column, worst = max(gaps.items(), key=lambda kv: kv[1].low)
    said = [
        f"{name}: {gap.better} vs {gap.worse} {gap.gap:+.4f} [{gap.low:+.4f}, {gap.high:+.4f}]"
        for name, gap in sorted(gaps.items())
    ]
    if bar is None:
        reason = f"{e.split} accuracy gaps (no max_group_gap set): " + "; ".join(said)
        return Gate("group_gap", True, worst.gap, None, reason, False, split=e.split)
    ok = worst.low <= bar
    verdict = (
        "within the bar or within chance"
        if ok
        else f"{column}'s gap exceeds {bar:.4f} beyond chance (its interval starts at"
        f" {worst.low:+.4f}): look at {worst.worse}'s errors, or add its examples"
    )
    reason = f"{e.split} accuracy gaps: " + "; ".join(said) + f"; {verdict}"
    return Gate("group_gap", ok, worst.gap, bar, reason, split=e.split)


FIXED_GATES: tuple[GateSpec, ...] = (
    GateSpec(
        "val_test_agreement",
        "Validation and test accuracy agree within the tolerance.",
        _agreement,
    ),
    GateSpec(
        "beats_champion",
        "Better than the deployed champion on the same rows of the gate split (paired), by"
        " the required absolute and relative change, beyond chance: the paired interval's"
        ' lower bound clears it (evidence = "interval", the default; passes on the first'
        " run: no champion yet).",
        beats_champion,
    ),
    GateSpec(
        "significance",
        "McNemar's test of challenger vs champion (when max_p_value is set).",
        significance,
    ),
    GateSpec(
        "simpler_not_better",
        "Beats every baseline by simpler_margin: a simpler model that does as well should win.",
        _simpler_not_better,
    ),
    GateSpec(
        "human_level",
        "Accuracy on the gate split as a share of human-level accuracy from the annotations (gate"
        " when min_share_of_human is set).",
        _human_level,
    ),
    GateSpec(
        "known_problems",
        "Each known problem's min_score, and no regression against the champion beyond"
        " max_problem_regression (when set).",
        _known_problems,
    ),
    GateSpec("artifact_size", "Artifact size within max_artifact_mb (when set).", _artifact_size),
    GateSpec(
        "latency",
        "p95 single-prediction latency over 200 timed predictions within max_p95_latency_ms"
        " (when set).",
        _latency,
    ),
    GateSpec(
        "group_gap",
        "Per [fairness] groups column, the largest accuracy gap between two groups on the"
        " gate split: refused when its 95% interval lies wholly above max_group_gap (when"
        " set).",
        _group_gap,
    ),
)


def gate_specs(policy: PromotionConfig) -> list[GateSpec]:
    """Every gate of ``policy``, in order: its thresholds, then the fixed gates."""
    split = policy.gate_split
    thresholds = [_threshold(m, bar, split) for m, bar in policy.all_thresholds().items()]
    return [*thresholds, *FIXED_GATES]
