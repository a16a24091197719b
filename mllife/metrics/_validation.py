"""The one input-validation helper behind every metric.

Labels of any type (ints, strings) become integer codes ``0..k-1`` in the order of
``labels``. Errors name the problem and show an offending value and its position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Encoded", "as_1d_array", "check_proba", "encode_labels", "int_range"]

PROBA_SUM_TOLERANCE = 1e-4


def as_1d_array(values: Any, *, name: str) -> np.ndarray:
    """numpy view of a list, array, polars/pandas Series or torch tensor."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # torch.Tensor
        values = values.detach().cpu().numpy()
    elif hasattr(values, "to_numpy"):  # polars / pandas
        values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim == 0:
        raise ValueError(f"{name} must be a sequence, got a scalar {array.item()!r}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


@dataclass(frozen=True)
class Encoded:
    true: np.ndarray  # integer codes into labels
    pred: np.ndarray
    labels: np.ndarray
    weight: np.ndarray | None
    #: labels are the whole range 0..max of integer inputs; classes that occur in
    #: neither vector are dropped later (see ``compress``), which saves two passes.
    dense: bool = False

    def compress(self, present: np.ndarray) -> Encoded:
        """Keep only the labels flagged in ``present``, re-coding the rows."""
        if present.all():
            return Encoded(self.true, self.pred, self.labels, self.weight)
        lut = np.cumsum(present) - 1
        return Encoded(lut[self.true], lut[self.pred], self.labels[present], self.weight)


RANGE_CHUNK = 1 << 18


def int_range(array: np.ndarray) -> tuple[int, int]:
    """(min, max) of an integer array, in chunks: each chunk's max is read from the CPU
    cache right after its min, so the array crosses memory once instead of twice."""
    if array.size <= RANGE_CHUNK:
        return int(array.min()), int(array.max())
    low, high = None, None
    for start in range(0, array.size, RANGE_CHUNK):
        part = array[start : start + RANGE_CHUNK]
        part_low, part_high = int(part.min()), int(part.max())
        low = part_low if low is None else min(low, part_low)
        high = part_high if high is None else max(high, part_high)
    return low, high


def _show(value: Any) -> str:
    """A value as users wrote it: 5, not np.int64(5)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _first_bad(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _is_int(array: np.ndarray) -> bool:
    return array.dtype.kind in "iub"


def _encode_with(
    values: np.ndarray, labels: np.ndarray, *, name: str, span: tuple[int, int] | None = None
) -> np.ndarray:
    """Codes of ``values`` in ``labels``; raise naming the first value not in ``labels``."""
    if _is_int(values) and _is_int(labels) and len(values):
        low, high = int(labels.min()), int(labels.max())
        vmin, vmax = span if span is not None else int_range(values)
        if high - low < 1 << 20:
            if (
                low == 0
                and np.array_equal(labels, np.arange(len(labels)))
                and vmin >= 0
                and (vmax < len(labels))
            ):
                return values  # already codes: the common, fastest case
            lut = np.full(high - low + 1, -1, dtype=np.int64)
            lut[labels - low] = np.arange(len(labels))
            inside = (values >= low) & (values <= high)
            codes = np.full(len(values), -1, dtype=np.int64)
            codes[inside] = lut[values[inside] - low]
            _raise_if_unknown(codes < 0, values, labels, name=name)
            return codes
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    try:
        pos = np.searchsorted(sorted_labels, values)
    except TypeError as exc:
        raise ValueError(
            f"{name} mixes label types with labels= ({labels.dtype} vs {values.dtype})"
        ) from exc
    pos = np.clip(pos, 0, len(labels) - 1)
    found = sorted_labels[pos] == values
    _raise_if_unknown(~found, values, labels, name=name)
    return order[pos]


def _raise_if_unknown(bad: np.ndarray, values, labels, *, name: str) -> None:
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(
            f"{name}[{i}] = {_show(values[i])} is not among labels={labels.tolist()[:20]}"
            f" ({int(bad.sum())} such values); add it to labels= or fix the data"
        )


def _checked_labels(array: np.ndarray, name: str) -> np.ndarray:
    """``array`` as labels: whole floats become integers; NaN, fractions, None refused."""
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            i = _first_bad(bad)
            raise ValueError(
                f"{name}[{i}] = {_show(array[i])}: labels must be integers or strings,"
                " not fractional or NaN floats"
            )
        return array.astype(np.int64)
    if array.dtype == object:
        nulls = np.array([v is None for v in array])
        if nulls.any():
            i = _first_bad(nulls)
            raise ValueError(f"{name}[{i}] is None: every row needs a label")
    return array


def _inferred_labels(true, pred, spans) -> tuple[np.ndarray, bool]:
    """(the label set, whether it is the dense range 0..max) from the data itself."""
    if _is_int(true) and _is_int(pred):
        low = min(spans[0][0], spans[1][0])
        high = max(spans[0][1], spans[1][1])
        # A dense 0..max range keeps the confusion matrix small (<= 1024^2 cells);
        # sparse or large label values go through the sort-based union instead.
        if low >= 0 and high < 1 << 10:
            return np.arange(high + 1), True
        return np.union1d(true, pred), False
    try:
        return np.union1d(
            true.astype(str) if true.dtype == object else true,
            pred.astype(str) if pred.dtype == object else pred,
        ), False
    except TypeError as exc:
        raise ValueError(f"y_true and y_pred hold labels that cannot be ordered: {exc}") from exc


def _given_labels(labels: Any) -> np.ndarray:
    label_array = as_1d_array(labels, name="labels")
    if len(label_array) == 0:
        raise ValueError("labels= is empty")
    if len(np.unique(label_array)) != len(label_array):
        raise ValueError(f"labels= has repeated values: {label_array.tolist()[:20]}")
    return label_array


def _checked_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    weight = as_1d_array(sample_weight, name="sample_weight").astype(np.float64)
    if len(weight) != n:
        raise ValueError(f"sample_weight has {len(weight)} values for {n} rows")
    bad = ~np.isfinite(weight) | (weight < 0)
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(
            f"sample_weight[{i}] = {_show(weight[i])}: weights must be finite and >= 0"
        )
    if weight.sum() <= 0:
        raise ValueError("sample_weight sums to 0: nothing to evaluate")
    return weight


def checked_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both label vectors as 1-d arrays of equal, non-zero length with usable labels."""
    true = as_1d_array(y_true, name="y_true")
    pred = as_1d_array(y_pred, name="y_pred")
    if len(true) != len(pred):
        raise ValueError(f"y_true and y_pred have different lengths: {len(true)} and {len(pred)}")
    if len(true) == 0:
        raise ValueError("y_true and y_pred are empty: nothing to evaluate")
    return _checked_labels(true, "y_true"), _checked_labels(pred, "y_pred")


def encode_labels(
    y_true: Any, y_pred: Any, *, labels: Any = None, sample_weight: Any = None
) -> Encoded:
    """Validate a pair of label vectors and encode them as integer codes."""
    true, pred = checked_pair(y_true, y_pred)
    spans: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None)
    if _is_int(true) and _is_int(pred):
        spans = (int_range(true), int_range(pred))
    if labels is None:
        label_array, dense = _inferred_labels(true, pred, spans)
    else:
        label_array, dense = _given_labels(labels), False
    if true.dtype == object:
        true = true.astype(str)
    if pred.dtype == object:
        pred = pred.astype(str)
    if label_array.dtype == object:
        label_array = label_array.astype(str)
    true_codes = _encode_with(true, label_array, name="y_true", span=spans[0])
    pred_codes = _encode_with(pred, label_array, name="y_pred", span=spans[1])
    weight = _checked_weight(sample_weight, len(true))
    return Encoded(true=true_codes, pred=pred_codes, labels=label_array, weight=weight, dense=dense)


def check_proba(proba: Any, *, n_rows: int, n_labels: int) -> np.ndarray:
    """(n_rows, n_labels) float probabilities; a binary (n_rows,) vector is expanded."""
    if hasattr(proba, "detach") and hasattr(proba, "cpu"):
        proba = proba.detach().cpu().numpy()
    elif hasattr(proba, "to_numpy"):
        proba = proba.to_numpy()
    array = np.asarray(proba)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"proba must be numeric, got dtype {array.dtype}")
    if array.ndim == 1 and n_labels == 2:
        array = np.column_stack([1.0 - array, array])
    if array.ndim != 2 or array.shape != (n_rows, n_labels):
        raise ValueError(
            f"proba has shape {array.shape}; expected ({n_rows}, {n_labels}): one row per"
            " sample and one column per label, in the order of labels"
        )
    # Row sums are checked to the input's own precision (sqrt(eps), as scikit-learn).
    tolerance = PROBA_SUM_TOLERANCE
    if array.dtype.kind == "f":
        tolerance = max(tolerance, float(np.sqrt(np.finfo(array.dtype).eps)))
    if array.dtype not in (np.float32, np.float64):  # ints, float16, longdouble
        array = array.astype(np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise ValueError(
            f"proba[{row}, {col}] = {_show(array[row, col])}: probabilities must be finite"
        )
    out_of_range = (array < 0) | (array > 1)
    if out_of_range.any():
        row, col = np.argwhere(out_of_range)[0]
        raise ValueError(f"proba[{row}, {col}] = {_show(array[row, col])} is outside [0, 1]")
    sums = array.sum(axis=1, dtype=np.float64)
    off = np.abs(sums - 1.0) > tolerance
    if off.any():
        i = _first_bad(off)
        raise ValueError(
            f"row {i} of proba sums to {sums[i]:.6g}, not 1 ({int(off.sum())} such rows);"
            " pass normalised probabilities (e.g. a softmax output)"
        )
    return array
