"""Metrics of predicted probabilities: ROC AUC, log loss, Brier, calibration, top-k."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "brier_score_loss",
    "expected_calibration_error",
    "log_loss",
    "roc_auc_per_class",
    "top_k_accuracy",
]


def _auc_from_sorted(all_sorted: np.ndarray, pos_sorted: np.ndarray) -> float:
    """Mann-Whitney AUC from one column sorted whole and its positives sorted.

    Negatives below a positive = all values below it - positives below it, so only one
    full sort per column is needed (keys are sorted, so each search is a merge-like scan).
    """
    n_pos = len(pos_sorted)
    n_neg = len(all_sorted) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    all_lt = np.searchsorted(all_sorted, pos_sorted, side="left")
    if not (all_sorted[1:] == all_sorted[:-1]).any():
        # No ties anywhere: the i-th smallest positive has exactly i positives below it.
        wins = float(all_lt.sum()) - n_pos * (n_pos - 1) / 2
        return wins / (n_pos * n_neg)
    all_le = np.searchsorted(all_sorted, pos_sorted, side="right")
    pos_lt = np.searchsorted(pos_sorted, pos_sorted, side="left")
    pos_le = np.searchsorted(pos_sorted, pos_sorted, side="right")
    neg_lt = all_lt - pos_lt
    neg_eq = (all_le - all_lt) - (pos_le - pos_lt)
    wins = float(neg_lt.sum()) + 0.5 * float(neg_eq.sum())
    return wins / (n_pos * n_neg)


def _weighted_auc(scores: np.ndarray, positive: np.ndarray, weight: np.ndarray) -> float:
    """AUC with sample weights: ties grouped, half of each tied negative mass counted."""
    order = np.argsort(scores, kind="stable")
    s, w, p = scores[order], weight[order], positive[order]
    w_pos, w_neg = np.where(p, w, 0.0), np.where(p, 0.0, w)
    total_pos, total_neg = w_pos.sum(), w_neg.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    starts = np.concatenate([[0], np.flatnonzero(np.diff(s)) + 1])
    neg_in_group = np.add.reduceat(w_neg, starts)
    pos_in_group = np.add.reduceat(w_pos, starts)
    neg_below = np.concatenate([[0.0], np.cumsum(neg_in_group)[:-1]])
    wins = (pos_in_group * (neg_below + 0.5 * neg_in_group)).sum()
    return float(wins / (total_pos * total_neg))


def _sorted(values: np.ndarray) -> np.ndarray:
    """Ascending copy. Polars' multithreaded sort is ~3x numpy's on a million values."""
    if len(values) < 50_000:
        return np.sort(values)
    import polars as pl  # only here: a first small evaluate() should not pay its import

    return pl.Series(values).sort().to_numpy()


def roc_auc_per_class(
    true: np.ndarray, proba: np.ndarray, weight: np.ndarray | None = None
) -> np.ndarray:
    """One-vs-rest AUC per class (NaN where a class is absent from, or all of, y_true)."""
    k = proba.shape[1]
    if weight is not None:
        return np.array([_weighted_auc(proba[:, c], true == c, weight) for c in range(k)])
    # Rows grouped by class once, so each class's positives are one slice.
    # (int16 codes: numpy's radix sort is much faster on narrow integers)
    order = np.argsort(true.astype(np.int16 if k < 1 << 15 else np.int64), kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(true, minlength=k))])

    int_view = np.int64 if proba.dtype.itemsize == 8 else np.int32

    def one(c: int) -> float:
        # Probabilities are >= 0, so their bit patterns order like the values once -0.0
        # is folded into +0.0 (adding 0.0 does that while making the contiguous copy);
        # integer keys sort faster.
        keys = (proba[:, c] + 0.0).view(int_view)
        positives = keys[order[bounds[c] : bounds[c + 1]]]
        return _auc_from_sorted(_sorted(keys), _sorted(positives))

    if len(true) < 50_000:
        return np.array([one(c) for c in range(k)])
    # Sorts and searches release the GIL: a few columns at once overlap numpy's
    # single-threaded steps with polars' threaded sort.
    with ThreadPoolExecutor(max_workers=min(k, 4)) as pool:
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
