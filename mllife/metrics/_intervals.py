"""Confidence intervals that stay honest on small sets.

The rule (also in the README):

- A proportion (accuracy; a class's recall and precision) gets the Wilson score
  interval: closed form, exact enough from n = 1, and never collapsing to a point at
  0 or 1 (57 of 57 correct gives [0.937, 1.000], where the percentile bootstrap gives
  [1.000, 1.000]). With sample weights, n is Kish's effective sample size
  (sum w)^2 / sum w^2.
- A statistic that is not a proportion (macro F1) gets the percentile bootstrap, and
  only where the bootstrap is valid: at least ``MIN_ROWS`` rows and ``MIN_EACH`` right
  and ``MIN_EACH`` wrong answers. At the boundary (no or almost no errors) the bootstrap
  distribution degenerates to the observed value; there the interval is reported as
  not estimated, with the reason, instead of a false certainty.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from mllife.metrics._bootstrap import percentile_interval, resample_cells, resample_weighted_cells
from mllife.metrics._classification import batched_accuracy_and_macro_f1

__all__ = [
    "MIN_EACH",
    "MIN_ROWS",
    "bootstrap_validity",
    "kish_n",
    "report_intervals",
    "wilson_interval",
    "wilson_intervals",
]

MIN_ROWS = 30
MIN_EACH = 5


def wilson_interval(successes: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval of ``successes / n``; (0, 1) when there is no data."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = min(max(successes / n, 0.0), 1.0)
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    # exact at the boundary (rounding could leave 1 - 1e-17 instead of 1)
    return (0.0 if p == 0 else low), (1.0 if p == 1 else high)


def difference_interval(
    p1: float, n1: float, p2: float, n2: float, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(p1 - p2, low, high): Newcombe's hybrid score interval of the difference of two
    independent proportions, from their Wilson intervals (sound at small n and near 0
    or 1, unlike the normal approximation)."""
    l1, u1 = wilson_interval(p1 * n1, n1, confidence)
    l2, u2 = wilson_interval(p2 * n2, n2, confidence)
    d = p1 - p2
    return d, d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def wilson_intervals(successes: np.ndarray, n: np.ndarray, confidence: float) -> list:
    pairs = zip(successes, n, strict=True)
    return [wilson_interval(float(s), float(m), confidence) for s, m in pairs]


def kish_n(weight: np.ndarray | None, n: int) -> float:
    """Kish's effective sample size of weighted rows (``n`` without weights)."""
    if weight is None:
        return float(n)
    total, squares = float(weight.sum()), float(np.square(weight).sum())
    return total * total / squares if squares > 0 else 0.0


def bootstrap_validity(n_rows: int, n_right: float, n_wrong: float) -> str | None:
    """None when a percentile bootstrap is valid here, else why it is not."""
    if n_rows < MIN_ROWS:
        return f"not estimated: {n_rows} rows (the bootstrap needs {MIN_ROWS}+)"
    if n_wrong < MIN_EACH:
        # with fewer errors the bootstrap collapses onto the observed value
        return f"not estimated: {n_wrong:g} wrong answers (the bootstrap needs {MIN_EACH}+)"
    if n_right < MIN_EACH:
        return f"not estimated: {n_right:g} right answers (the bootstrap needs {MIN_EACH}+)"
    return None


def report_intervals(cm, enc, accuracy: float, n_bootstrap: int, confidence: float, seed: int):
    """(intervals, notes) of an evaluation: Wilson for accuracy; the bootstrap for macro
    F1 where it is valid, else a note saying why there is none."""
    n_eff = kish_n(enc.weight, len(enc.true))
    intervals = {"accuracy": wilson_interval(accuracy * n_eff, n_eff, confidence)}
    notes = {"accuracy": "wilson"}
    right = float(np.trace(cm))
    why_not = bootstrap_validity(len(enc.true), right, float(cm.sum()) - right)
    if not n_bootstrap:
        notes["macro_f1"] = "not computed (n_bootstrap=0)"
    elif why_not is not None:
        notes["macro_f1"] = why_not
    else:
        intervals["macro_f1"] = _bootstrap_macro_f1(cm, enc, n_bootstrap, confidence, seed)
        notes["macro_f1"] = "bootstrap"
    return intervals, notes


def _bootstrap_macro_f1(cm, enc, n_bootstrap: int, confidence: float, seed: int):
    """Percentile bootstrap of macro F1, resampling confusion cells."""
    k = len(enc.labels)
    rng = np.random.default_rng(seed)
    if enc.weight is None:
        replicates = resample_cells(cm, n_bootstrap, rng)
    else:
        replicates = resample_weighted_cells(
            enc.true.astype(np.int64) * k + enc.pred, enc.weight, k * k, n_bootstrap, rng
        ).reshape(n_bootstrap, k, k)
    _, macro_f1 = batched_accuracy_and_macro_f1(replicates)
    return percentile_interval(macro_f1, confidence)
