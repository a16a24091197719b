"""Challenger versus champion on the same rows, and validation/test agreement."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from mllife.metrics._bootstrap import percentile_interval, resample_cells
from mllife.metrics._classification import confusion_counts, count_metrics, per_class_from_confusion
from mllife.metrics._report import EvaluationReport, _PicklableProxies
from mllife.metrics._validation import as_1d_array, encode_labels

__all__ = ["Agreement", "Comparison", "agreement", "compare", "mcnemar_test"]

COMPARED = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1")
MAX_JOINT_CELLS = 100_000


@dataclass(frozen=True)
class Comparison(_PicklableProxies):
    """How a challenger differs from the champion on the same rows (challenger - champion)."""

    labels: tuple[Any, ...]
    champion: MappingProxyType
    challenger: MappingProxyType
    deltas: MappingProxyType  # metric -> challenger - champion
    intervals: MappingProxyType  # metric -> paired bootstrap interval of the delta
    mcnemar_statistic: float
    mcnemar_p_value: float
    mcnemar_exact: bool
    #: per class: {"label", "precision", "recall", "f1"} deltas
    per_class: tuple[dict[str, Any], ...]
    right_to_wrong: np.ndarray  # row indices the champion got right and the challenger wrong
    wrong_to_right: np.ndarray
    #: rows compared, and the level of ``intervals``
    n_rows: int = 0
    confidence: float = 0.95

    def summary(self) -> str:
        d = self.deltas
        low, high = self.intervals.get("accuracy", (np.nan, np.nan))
        return (
            f"accuracy {d['accuracy']:+.4f} [{low:+.4f}, {high:+.4f}], macro_f1"
            f" {d['macro_f1']:+.4f}; {len(self.wrong_to_right)} fixed,"
            f" {len(self.right_to_wrong)} broken; McNemar p={self.mcnemar_p_value:.3g}"
        )


def mcnemar_test(b: int, c: int) -> tuple[float, float, bool]:
    """(statistic, p-value, exact?) for discordant counts ``b`` and ``c``.

    Exact two-sided binomial test when ``b + c < 25``; otherwise the chi-squared test
    with continuity correction.
    """
    from scipy import stats  # only here: importing scipy.stats costs ~0.7 s

    n = b + c
    if n == 0:
        return 0.0, 1.0, True
    if n < 25:
        return float(min(b, c)), float(stats.binomtest(min(b, c), n, 0.5).pvalue), True
    statistic = (abs(b - c) - 1) ** 2 / n
    return float(statistic), float(stats.chi2.sf(statistic, 1)), False


def _encoded_pair(y_true, champion_pred, challenger_pred, labels):
    """Both models' predictions encoded against one label set (given, or the union)."""
    champion_array = as_1d_array(champion_pred, name="champion_pred")
    challenger_array = as_1d_array(challenger_pred, name="challenger_pred")
    if len(champion_array) != len(challenger_array):
        raise ValueError(
            f"champion_pred and challenger_pred have different lengths:"
            f" {len(champion_array)} and {len(challenger_array)}"
        )
    if labels is None:
        enc_all = encode_labels(
            np.concatenate([as_1d_array(y_true, name="y_true"), champion_array]),
            np.concatenate([challenger_array, challenger_array]),
        )
        labels = enc_all.labels
    champ = encode_labels(y_true, champion_array, labels=labels)
    return champ, encode_labels(y_true, challenger_array, labels=labels)


def _paired_intervals(true, pred_a, pred_b, k, n_bootstrap, confidence, random_state):
    """Intervals of each delta from a paired bootstrap: rows resampled once for both
    models (as cells of the joint true x champion x challenger table)."""
    if not n_bootstrap or k**3 > MAX_JOINT_CELLS:
        return {}
    joint = np.bincount((true * k + pred_a) * k + pred_b, minlength=k**3).reshape(k, k, k)
    replicates = resample_cells(joint, n_bootstrap, np.random.default_rng(random_state))
    champion, challenger = _batched(replicates.sum(axis=3)), _batched(replicates.sum(axis=2))
    return {m: percentile_interval(challenger[m] - champion[m], confidence) for m in COMPARED}


def _per_class_deltas(cm_a, cm_b, labels) -> tuple[dict, ...]:
    stats_a, stats_b = per_class_from_confusion(cm_a), per_class_from_confusion(cm_b)
    return tuple(
        {
            "label": label.item() if isinstance(label, np.generic) else label,
            **{m: float(stats_b[m][i] - stats_a[m][i]) for m in ("precision", "recall", "f1")},
        }
        for i, label in enumerate(labels)
    )


def compare(
    y_true: Any,
    champion_pred: Any,
    challenger_pred: Any,
    *,
    labels: Any = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> Comparison:
    """Compare two models' predictions on the same rows.

    Deltas are challenger minus champion; their intervals come from a paired bootstrap
    (rows are resampled once for both models).

    Examples
    --------
    >>> c = compare([0, 1, 1, 0], [0, 1, 0, 0], [0, 1, 1, 0])
    >>> c.deltas["accuracy"], c.wrong_to_right.tolist()
    (0.25, [2])
    """
    champ, chall = _encoded_pair(y_true, champion_pred, challenger_pred, labels)
    k = len(champ.labels)
    true = champ.true.astype(np.int64)
    cm_a = confusion_counts(true, champ.pred, k)
    cm_b = confusion_counts(true, chall.pred, k)
    metrics_a, metrics_b = count_metrics(cm_a), count_metrics(cm_b)
    deltas = {m: metrics_b[m] - metrics_a[m] for m in COMPARED}
    intervals = _paired_intervals(true, champ.pred, chall.pred, k, n_bootstrap, confidence,
                                  random_state)  # fmt: skip
    right_a = champ.pred == champ.true
    right_b = chall.pred == chall.true
    right_to_wrong = np.flatnonzero(right_a & ~right_b)
    wrong_to_right = np.flatnonzero(~right_a & right_b)
    statistic, p_value, exact = mcnemar_test(len(right_to_wrong), len(wrong_to_right))
    return Comparison(
        labels=tuple(x.item() if isinstance(x, np.generic) else x for x in champ.labels),
        champion=MappingProxyType(metrics_a),
        challenger=MappingProxyType(metrics_b),
        deltas=MappingProxyType(deltas),
        intervals=MappingProxyType(intervals),
        mcnemar_statistic=statistic,
        mcnemar_p_value=p_value,
        mcnemar_exact=exact,
        per_class=_per_class_deltas(cm_a, cm_b, champ.labels),
        right_to_wrong=right_to_wrong,
        wrong_to_right=wrong_to_right,
        n_rows=len(true),
        confidence=confidence,
    )


def _batched(cms: np.ndarray) -> dict[str, np.ndarray]:
    """accuracy, balanced accuracy, macro and weighted F1 of a stack (B, k, k)."""
    cms = cms.astype(np.float64)
    tp = np.diagonal(cms, axis1=1, axis2=2)
    support, predicted = cms.sum(axis=2), cms.sum(axis=1)
    total = support.sum(axis=1)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support != 0)
    f1 = np.divide(
        2 * tp, support + predicted, out=np.zeros_like(tp), where=(support + predicted) != 0
    )
    present = support > 0
    return {
        "accuracy": tp.sum(axis=1) / total,
        "balanced_accuracy": (recall * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1),
        "macro_f1": f1.mean(axis=1),
        "weighted_f1": (f1 * support).sum(axis=1) / total,
    }


@dataclass(frozen=True)
class Agreement:
    passed: bool
    metric: str
    validation: float
    test: float
    gap: float
    tolerance: float
    reason: str
    #: two-sided p-value of the gap under "the same accuracy" (two proportions); None for
    #: a metric that is not a proportion of rows
    p_value: float | None = None
    alpha: float = 0.05

    def agrees(self, tolerance: float) -> bool:
        """Within ``tolerance``, or a larger gap that chance explains at these sizes."""
        within_chance = self.p_value is not None and self.p_value >= self.alpha
        return self.gap <= tolerance or within_chance


def two_proportion_p_value(p1: float, n1: int, p2: float, n2: int) -> float:
    """Two-sided p-value of ``p1`` (of ``n1``) vs ``p2`` (of ``n2``): pooled z-test."""
    import math

    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0 if p1 == p2 else 0.0
    return math.erfc(abs(p1 - p2) / spread / math.sqrt(2))


def agreement(
    validation_report: EvaluationReport,
    test_report: EvaluationReport,
    *,
    tolerance: float = 0.05,
    metric: str = "accuracy",
    alpha: float = 0.05,
) -> Agreement:
    """Do validation and test agree? A large gap means the model will not generalise.

    They disagree when the gap exceeds ``tolerance`` *and*, for accuracy, chance does not
    explain it (two-proportion test at level ``alpha``): on 18 validation and 18 test rows
    one row is a gap of 0.056, well within chance; on 10,000 rows a 5-point gap is not.

    Examples
    --------
    >>> from mllife import evaluate
    >>> a = agreement(evaluate([0, 1], [0, 1]), evaluate([0, 1], [0, 0]), tolerance=0.1)
    >>> a.passed, a.gap
    (False, 0.5)
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    if metric not in validation_report.metrics:
        raise ValueError(
            f"unknown metric {metric!r}; available: {sorted(validation_report.metrics)}"
        )
    val, test = validation_report.metrics[metric], test_report.metrics[metric]
    gap = abs(val - test)
    n_val, n_test = validation_report.n_samples, test_report.n_samples
    p_value = (
        two_proportion_p_value(val, n_val, test, n_test)
        if metric == "accuracy" and n_val and n_test
        else None
    )
    result = Agreement(False, metric, val, test, gap, tolerance, "", p_value, alpha)
    passed = result.agrees(tolerance)
    if gap <= tolerance:
        reason = (
            f"validation {metric} {val:.4f} and test {test:.4f} agree"
            f" (gap {gap:.4f} <= {tolerance:.4f})"
        )
    elif passed:
        reason = (
            f"validation {metric} {val:.4f} and test {test:.4f} differ by {gap:.4f}"
            f" > {tolerance:.4f}, but chance explains that on {n_val} and {n_test} rows"
            f" (p = {p_value:.2f} >= {alpha:g}): they agree"
        )
    else:
        side = "validation" if val > test else "test"
        reason = (
            f"validation {metric} {val:.4f} and test {test:.4f} differ by {gap:.4f}"
            f" > {tolerance:.4f}; {side} is higher: the model may not generalise"
            " (overfitting to the validation data, or a split problem)"
            + (f"; not chance on {n_val} and {n_test} rows (p = {p_value:.2g})"
               if p_value is not None else "")
        )  # fmt: skip
    return Agreement(passed, metric, val, test, gap, tolerance, reason, p_value, alpha)
