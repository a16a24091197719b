"""Confusion matrix and every count-based metric derived from it in one pass.

Zero division follows scikit-learn's default (``zero_division="warn"``, which yields
0.0): a class never predicted has precision 0, a class absent from ``y_true`` has
recall 0, and its F1 is 0 when both precision and recall are undefined or zero.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "confusion_counts",
    "count_metrics",
    "dense_confusion",
    "per_class_from_confusion",
]


CHUNK = 1 << 18


def confusion_counts(
    true: np.ndarray, pred: np.ndarray, n_labels: int, weight: np.ndarray | None = None
) -> np.ndarray:
    """(k, k) matrix: rows are true labels, columns predicted labels."""
    k = n_labels
    cells = k * k
    if cells >= 1 << 31:
        raise ValueError(f"{k} labels are too many for a dense confusion matrix")
    if weight is not None:
        codes = true.astype(np.int64, copy=False) * k + pred
        return np.bincount(codes, weights=weight, minlength=cells).reshape(k, k)
    # The narrowest code type keeps memory traffic (the real cost) low.
    dtype = np.uint8 if cells <= 256 else np.int16 if cells <= 32767 else np.int32
    # numpy only: torch's threaded path was faster warm but cost 5-7 s and 480 MB to
    # import on a first call. In chunks, so the narrow codes and bincount's own intp
    # copy stay in the CPU cache instead of making extra passes over memory.
    counts = np.zeros(cells, dtype=np.int64)
    narrow_k = dtype(k)
    for start in range(0, len(true), CHUNK):
        codes = true[start : start + CHUNK].astype(dtype)
        codes *= narrow_k
        codes += pred[start : start + CHUNK].astype(dtype, copy=False)
        counts += np.bincount(codes, minlength=cells)
    return counts.reshape(k, k).astype(np.int64, copy=False)


#: integer labels 0..DENSE_LIMIT-1 get a dense confusion matrix in one fused pass
DENSE_LIMIT = 1 << 10


#: rows per pass of :func:`dense_confusion`: its int64 codes and the inputs' slices
#: stay in the CPU's L2 cache (256 KiB each). On this project's 2-core machine, 10 M
#: labels: 32 K rows 20 ms, 256 K rows 28 ms (benchmarks/bench_metrics.py)
DENSE_CHUNK = 1 << 15


def dense_confusion(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, int] | None:
    """For non-negative integer labels below ``DENSE_LIMIT``: (the confusion matrix over
    0..max, max), from one chunked pass that checks the range and counts together. The
    range check is one OR-reduction per chunk (the OR of non-negative values bounds their
    maximum; a negative value makes it negative) instead of a min and a max of each
    array. None when a value is negative or too large: the caller then encodes the
    labels the general way."""
    size = 16
    counts = np.zeros(size * size, dtype=np.int64)
    buffer = np.empty(min(DENSE_CHUNK, len(true)), dtype=np.int64)
    for start in range(0, len(true), DENSE_CHUNK):
        a, b = true[start : start + DENSE_CHUNK], pred[start : start + DENSE_CHUNK]
        # int64 codes feed bincount without its own conversion; a uint64 beyond int64
        # wraps negative here and is refused below
        a = a if a.dtype == np.int64 else a.astype(np.int64)
        b = b if b.dtype == np.int64 else b.astype(np.int64)
        codes = buffer[: len(a)]
        np.bitwise_or(a, b, out=codes)
        bits = int(np.bitwise_or.reduce(codes))
        if bits < 0 or bits >= DENSE_LIMIT:  # DENSE_LIMIT is a power of two
            return None
        if bits >= size:  # grow: the pairs counted so far keep their cells
            grown = np.zeros((2 ** bits.bit_length(),) * 2, dtype=np.int64)
            grown[:size, :size] = counts.reshape(size, size)
            counts, size = grown.ravel(), len(grown)
        np.multiply(a, size, out=codes)
        codes += b
        counts += np.bincount(codes, minlength=size * size)
    matrix = counts.reshape(size, size)
    used = np.flatnonzero(matrix.any(axis=0) | matrix.any(axis=1))
    high = int(used[-1]) if len(used) else 0
    return matrix[: high + 1, : high + 1], high


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def per_class_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    cm = cm.astype(np.float64, copy=False)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * tp, support + predicted)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "predicted": predicted,
    }


def count_metrics(cm: np.ndarray) -> dict[str, float]:
    """Scalar metrics of one confusion matrix (accuracy, balanced, macro, weighted)."""
    stats = per_class_from_confusion(cm)
    total = float(cm.sum())
    support = stats["support"]
    present = support > 0
    out = {
        "accuracy": float(np.trace(cm) / total) if total else 0.0,
        # scikit-learn's balanced accuracy averages recall over classes present in y_true.
        "balanced_accuracy": float(stats["recall"][present].mean()) if present.any() else 0.0,
    }
    for name in ("precision", "recall", "f1"):
        values = stats[name]
        out[f"macro_{name}"] = float(values.mean())
        out[f"weighted_{name}"] = (
            float((values * support).sum() / support.sum()) if (support.sum()) else 0.0
        )
    return out


def batched_accuracy_and_macro_f1(cms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro F1 of a stack of confusion matrices, shape (B, k, k)."""
    cms = cms.astype(np.float64, copy=False)
    tp = np.diagonal(cms, axis1=1, axis2=2)
    total = cms.sum(axis=(1, 2))
    accuracy = _safe_divide(tp.sum(axis=1), total)
    f1 = _safe_divide(2 * tp, cms.sum(axis=2) + cms.sum(axis=1))
    return accuracy, f1.mean(axis=1)
