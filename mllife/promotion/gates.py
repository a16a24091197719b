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
from mllife.metrics import Agreement, Comparison, EvaluationReport

__all__ = ["FIXED_GATES", "Evidence", "Gate", "GateSpec", "gate_specs", "threshold_gate_name"]


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

    @property
    def metric(self) -> str:
        return self.policy.selection_metric

    @property
    def split(self) -> str:
        return self.policy.gate_split


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


def _no_comparison(e: Evidence) -> str | None:
    """Why there is nothing to compare with, or None when there is a champion to beat."""
    if e.champion_hash is None:
        return "no champion yet (first run): only the absolute gates apply"
    if e.champion_hash == e.challenger_hash:
        return "the challenger is the deployed champion"
    if e.comparison is None:
        raise ValueError("a champion exists, so decide() needs the comparison with it")
    return None


def _points(x: float) -> str:
    """A change in a [0, 1] metric in points: 0.0056 -> "0.56 points"."""
    return f"{abs(x) * 100:.2f} points"


def _beats_champion(e: Evidence) -> Gate:
    why_not = _no_comparison(e)
    if why_not is not None:
        observed = 0.0 if e.champion_hash == e.challenger_hash else None
        return Gate("beats_champion", True, observed, None, why_not, False)
    c, metric = e.comparison, e.metric
    delta, before = c.deltas[metric], c.champion[metric]
    need = max(e.policy.setting("min_improvement"), e.policy.min_relative_improvement * abs(before))
    versus = f"{e.split} {metric} {c.challenger[metric]:.4f} vs champion {before:.4f}"
    point_ok = delta >= need and (delta > 0 or need < 0)
    if not point_ok and delta <= 0 and need <= 0:
        # "change +0.0000 < required +0.0000" reads like a bug; say what it means
        change = "the same" if delta == 0 else f"lower by {-delta:.4f}"
        reason = f"{versus}: {change}, and a challenger must improve on the champion"
        return Gate("beats_champion", False, delta, need, reason, split=e.split)
    if e.policy.evidence == "interval":
        return _beats_beyond_chance(e, versus, delta, need)
    if need > 0:
        reason = f"{versus}: change {delta:+.4f} {'>=' if point_ok else '<'} required {need:+.4f}"
    elif delta > 0:
        reason = f"{versus}: better by {delta:.4f}"
    else:
        reason = f"{versus}: change {delta:+.4f}, within the allowed {need:+.4f}"
    return Gate("beats_champion", point_ok, delta, need, reason, split=e.split)


def _rows_to_tell(n_rows: int, interval, delta: float, need: float) -> str:
    """ " (about N rows would tell ...)": the rows at which an interval as wide, relative
    to its rows, would clear the margin (its width shrinks as one over the square root)."""
    if interval is None or not n_rows or delta <= need:
        return ""
    half = (interval[1] - interval[0]) / 2
    needed = int(n_rows * (half / (delta - need)) ** 2) + 1
    return f" (a change this size needs about {needed} rows of the {n_rows} to be told from chance)"


def _beats_beyond_chance(e: Evidence, versus: str, delta: float, need: float) -> Gate:
    """``evidence = "interval"``: the paired interval's lower bound must clear ``need``
    (McNemar's test stands in where no interval could be computed)."""
    c = e.comparison
    fixed, broken = len(c.wrong_to_right), len(c.right_to_wrong)
    rows = f"{fixed + broken} of {c.n_rows} rows differ: {fixed} fixed, {broken} broken"
    interval = c.intervals.get(e.metric)
    if interval is not None:
        low, high = interval
        ok = low > need if need == 0 else low >= need
        evidence = (
            f"{c.confidence:.0%} interval of the change [{low * 100:+.2f}, {high * 100:+.2f}]"
            f" points, lower bound {'above' if ok else 'not above'} the required"
            f" {need * 100:+.2f}; {rows}"
        )
    else:
        p = c.mcnemar_p_value
        ok = delta >= need and p <= 0.05
        evidence = f"no interval for {e.metric}; McNemar p={p:.3g} (needs <= 0.05); {rows}"
    change = f"better by {_points(delta)}" if delta > 0 else f"worse by {_points(delta)}"
    if ok:
        reason = f"{versus}: {change}, beyond chance ({evidence})"
    else:
        more = _rows_to_tell(c.n_rows, interval, delta, need)
        reason = (
            f"{versus}: {change}, but that could be chance ({evidence}) — not promoted;"
            f' collect more labelled data{more}, or set [promotion] evidence = "point" to'
            " promote on the observed change alone"
        )
    return Gate("beats_champion", ok, delta, need, reason, split=e.split)


def _significance(e: Evidence) -> Gate:
    max_p = e.policy.setting("max_p_value")
    why_not = _no_comparison(e)
    if why_not is not None:
        if e.champion_hash is None:
            why_not = "no champion yet: nothing to compare with"
        return Gate("significance", True, None, max_p, why_not, False)
    c = e.comparison
    p = c.mcnemar_p_value
    if max_p is None:
        return Gate("significance", True, p, None, f"McNemar p={p:.3g} (not required)", False)
    reason = (
        f"McNemar p={p:.3g} {'<=' if p <= max_p else '>'} {max_p:g}"
        f" ({len(c.wrong_to_right)} fixed, {len(c.right_to_wrong)} broken on {e.split})"
    )
    return Gate("significance", p <= max_p, p, max_p, reason, split=e.split)


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
        _beats_champion,
    ),
    GateSpec(
        "significance",
        "McNemar's test of challenger vs champion (when max_p_value is set).",
        _significance,
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
)


def gate_specs(policy: PromotionConfig) -> list[GateSpec]:
    """Every gate of ``policy``, in order: its thresholds, then the fixed gates."""
    split = policy.gate_split
    thresholds = [_threshold(m, bar, split) for m, bar in policy.all_thresholds().items()]
    return [*thresholds, *FIXED_GATES]
