"""Metrics of predicted probabilities: ROC AUC, log loss, Brier, calibration, top-k."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "brier_score_loss",
    "expected_calibration_error",
    "log_loss",
    "roc_auc_per_class",
    "top_k_accuracy",
]


def _binary_auc(scores: np.ndarray, positive: np.ndarray, weight: np.ndarray | None) -> float:
    """Mann-Whitney AUC with ties counted half; NaN when one class is absent."""
    if weight is None:
        pos = np.sort(scores[positive])
        neg = np.sort(scores[~positive])
        if len(pos) == 0 or len(neg) == 0:
            return float("nan")
        # Keys are sorted, so numpy's binary search reuses the previous position.
        below = np.searchsorted(neg, pos, side="left").astype(np.float64)
        at_or_below = np.searchsorted(neg, pos, side="right")
        wins = below.sum() + 0.5 * (at_or_below - below).sum()
        return float(wins / (len(pos) * len(neg)))
    order = np.argsort(scores, kind="stable")
    s, w, p = scores[order], weight[order], positive[order]
    w_pos, w_neg = np.where(p, w, 0.0), np.where(p, 0.0, w)
    total_pos, total_neg = w_pos.sum(), w_neg.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    # Group ties: negatives strictly below each tie group, and half of those tied.
    boundaries = np.flatnonzero(np.diff(s)) + 1
    starts = np.concatenate([[0], boundaries])
    neg_in_group = np.add.reduceat(w_neg, starts)
    pos_in_group = np.add.reduceat(w_pos, starts)
    neg_below = np.concatenate([[0.0], np.cumsum(neg_in_group)[:-1]])
    wins = (pos_in_group * (neg_below + 0.5 * neg_in_group)).sum()
    return float(wins / (total_pos * total_neg))


def roc_auc_per_class(
    true: np.ndarray, proba: np.ndarray, weight: np.ndarray | None = None
) -> np.ndarray:
    """One-vs-rest AUC per class (NaN where a class is absent from, or all of, y_true).

    Columns are independent sorts, and numpy's sort releases the GIL, so they run on
    all cores.
    """
    k = proba.shape[1]
    columns = np.asfortranarray(proba)

    def one(c: int) -> float:
        return _binary_auc(columns[:, c], true == c, weight)

    workers = min(k, os.cpu_count() or 1)
    if workers <= 1 or len(true) < 50_000:
        return np.array([one(c) for c in range(k)])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.array(list(pool.map(one, range(k))))


def _average(values: np.ndarray, weight: np.ndarray | None) -> float:
    return float(np.average(values, weights=weight))


def log_loss(true: np.ndarray, proba: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Cross-entropy, clipped at machine epsilon like scikit-learn."""
    eps = np.finfo(proba.dtype).eps
    p_true = np.clip(proba[np.arange(len(true)), true], eps, 1 - eps)
    return _average(-np.log(p_true), weight)


def brier_score_loss(
    true: np.ndarray, proba: np.ndarray, weight: np.ndarray | None = None
) -> float:
    """Mean squared distance to the one-hot truth; halved for two classes (scikit-learn)."""
    sq = (proba.astype(np.float64) ** 2).sum(axis=1)
    p_true = proba[np.arange(len(true)), true].astype(np.float64)
    per_row = sq - 2 * p_true + 1.0
    score = _average(per_row, weight)
    return score * 0.5 if proba.shape[1] < 3 else score


def expected_calibration_error(
    true: np.ndarray, proba: np.ndarray, weight: np.ndarray | None = None, *, n_bins: int = 15
) -> float:
    """Top-label ECE over ``n_bins`` equal-width confidence bins."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == true).astype(np.float64)
    w = np.ones(len(true)) if weight is None else weight
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    mass = np.bincount(bins, weights=w, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=w * confidence, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=w * correct, minlength=n_bins)
    return float(np.abs(acc_sum - conf_sum).sum() / mass.sum())


def top_k_accuracy(
    true: np.ndarray, proba: np.ndarray, k: int, weight: np.ndarray | None = None
) -> float:
    """Share of rows whose true label is among the ``k`` highest scores.

    Ties are broken like scikit-learn's ``top_k_accuracy_score`` (a stable sort, reversed:
    among equal scores the higher label index ranks first).
    """
    p_true = proba[np.arange(len(true)), true][:, None]
    index = np.arange(proba.shape[1])[None, :]
    ahead = (proba > p_true) | ((proba == p_true) & (index > true[:, None]))
    return _average((ahead.sum(axis=1) < k).astype(np.float64), weight)
