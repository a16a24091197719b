"""``evaluate``: every classification metric in about one pass, as an immutable report."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import numpy as np

from mllife.metrics import _probabilistic as prob
from mllife.metrics._bias import ClassBias, ConfusionPair, _plain, class_bias
from mllife.metrics._classification import (
    confusion_counts,
    count_metrics,
    dense_confusion,
    per_class_from_confusion,
)
from mllife.metrics._intervals import report_intervals, wilson_intervals
from mllife.metrics._plot import figure, to_png
from mllife.metrics._validation import Encoded, check_proba, checked_pair, encode_labels

__all__ = ["ClassBias", "ClassMetrics", "ConfusionPair", "EvaluationReport", "evaluate"]


def _rebuild(cls: type, state: dict[str, Any]) -> Any:
    return cls(
        **{
            k: MappingProxyType(v) if k in _PROXIES and isinstance(v, dict) else v
            for k, v in state.items()
        }
    )


_PROXIES = frozenset(
    {"metrics", "intervals", "interval_notes", "top_k", "champion", "challenger", "deltas"}
)


class _PicklableProxies:
    """Read-only mappings cannot be pickled; rebuild them from plain dicts on load."""

    def __reduce__(self) -> tuple:
        state = {
            f.name: dict(v) if isinstance(v := getattr(self, f.name), MappingProxyType) else v
            for f in fields(self)
        }
        return _rebuild, (type(self), state)


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class ClassMetrics:
    label: Any
    precision: float
    recall: float
    f1: float
    support: float
    #: Wilson intervals of the two rates (see ``mllife.metrics._intervals``)
    precision_interval: tuple[float, float] = (0.0, 1.0)
    recall_interval: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class EvaluationReport(_PicklableProxies):
    """The result of :func:`evaluate`. Immutable; arrays are read-only."""

    labels: tuple[Any, ...]
    n_samples: int
    total_weight: float
    confusion: np.ndarray
    metrics: MappingProxyType  # name -> float: accuracy, balanced_accuracy, macro_*, ...
    per_class: tuple[ClassMetrics, ...]
    class_bias: tuple[ClassBias, ...]
    asymmetric_pairs: tuple[ConfusionPair, ...]
    intervals: MappingProxyType  # metric -> (low, high)
    confidence: float
    roc_auc_per_class: np.ndarray | None = None
    top_k: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    #: metric -> how its interval was made ("wilson", "bootstrap") or why there is none
    interval_notes: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]

    @property
    def balanced_accuracy(self) -> float:
        return self.metrics["balanced_accuracy"]

    @property
    def macro_f1(self) -> float:
        return self.metrics["macro_f1"]

    @property
    def weighted_f1(self) -> float:
        return self.metrics["weighted_f1"]

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    def summary(self) -> str:
        """One line, e.g. ``n=180 accuracy=0.967 [0.939, 0.989] macro_f1=0.966 ...``."""
        parts = [f"n={self.n_samples}"]
        for name in ("accuracy", "macro_f1"):
            parts.append(f"{name}={self.metrics[name]:.3f} {self.interval_text(name)}")
        parts.append(f"balanced_accuracy={self.balanced_accuracy:.3f}")
        if "roc_auc" in self.metrics:
            parts.append(f"roc_auc={self.metrics['roc_auc']:.3f}")
        if self.asymmetric_pairs:
            parts.append(f"most asymmetric: {self.asymmetric_pairs[0].sentence()}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "labels": [_plain(label) for label in self.labels],
            "n_samples": self.n_samples,
            "total_weight": self.total_weight,
            "metrics": dict(self.metrics),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "interval_notes": dict(self.interval_notes),
            "confidence": self.confidence,
            "confusion": self.confusion.tolist(),
            "per_class": [
                {
                    **c.__dict__,
                    "label": _plain(c.label),
                    "precision_interval": list(c.precision_interval),
                    "recall_interval": list(c.recall_interval),
                }
                for c in self.per_class
            ],
            "class_bias": [
                {
                    "label": _plain(b.label),
                    "support": b.support,
                    "error_rate": b.error_rate,
                    "destinations": [[_plain(lbl), share] for lbl, share in b.destinations],
                }
                for b in self.class_bias
            ],
            "asymmetric_pairs": [
                {
                    "a": _plain(p.a),
                    "b": _plain(p.b),
                    "rate_a_as_b": p.rate_a_as_b,
                    "rate_b_as_a": p.rate_b_as_a,
                    "sentence": p.sentence(),
                }
                for p in self.asymmetric_pairs
            ],
            "roc_auc_per_class": None
            if self.roc_auc_per_class is None
            else [None if np.isnan(v) else float(v) for v in self.roc_auc_per_class],
            "top_k": dict(self.top_k),
        }

    def interval_text(self, name: str) -> str:
        """``[low, high]``, or why the metric has no interval."""
        interval = self.intervals.get(name)
        if interval is not None:
            return f"[{interval[0]:.3f}, {interval[1]:.3f}]"
        why = self.interval_notes.get(name, "not computed").removeprefix("not estimated: ")
        return f"(no interval: {why})"

    def to_markdown(self) -> str:
        """Headline metrics, a per-class table and class-bias sentences (Dagster metadata)."""
        lines = ["| metric | value | interval |", "|---|---|---|"]
        for name, value in self.metrics.items():
            interval = self.intervals.get(name)
            span = f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else ""
            if not interval and name in self.interval_notes:
                span = self.interval_notes[name]
            lines.append(f"| {name} | {value:.4f} | {span} |")
        lines += ["", "| class | precision | recall | f1 | support |", "|---|---|---|---|---|"]
        for c in self.per_class:
            p, r = c.precision_interval, c.recall_interval
            lines.append(
                f"| {c.label} | {c.precision:.3f} [{p[0]:.2f}, {p[1]:.2f}]"
                f" | {c.recall:.3f} [{r[0]:.2f}, {r[1]:.2f}] | {c.f1:.3f} | {c.support:g} |"
            )
        if self.asymmetric_pairs:
            lines += ["", "**Class bias**", ""]
            lines += [f"- {p.sentence()}" for p in self.asymmetric_pairs]
        return "\n".join(lines)

    def plot_confusion(self, *, title: str = "Confusion matrix") -> bytes:
        """A PNG heat map of the row-normalised confusion matrix, with counts."""
        cm = self.confusion
        rows = cm.sum(axis=1, keepdims=True)
        share = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows != 0)
        k = len(self.labels)
        size = min(2.5 + 0.45 * k, 12)
        fig, ax = figure(size, size)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(k), [str(x) for x in self.labels], rotation=90 if k > 12 else 0)
        ax.set_yticks(range(k), [str(x) for x in self.labels])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    if cm[i, j]:
                        ax.text(
                            j,
                            i,
                            f"{cm[i, j]:g}",
                            ha="center",
                            va="center",
                            fontsize=8,
                            color="white" if share[i, j] > 0.5 else "black",
                        )
        return to_png(fig)


def _per_class(cm: np.ndarray, labels, confidence: float) -> tuple[ClassMetrics, ...]:
    stats = per_class_from_confusion(cm)
    tp = np.diag(cm).astype(np.float64)
    precision_ci = wilson_intervals(tp, stats["predicted"], confidence)
    recall_ci = wilson_intervals(tp, stats["support"], confidence)
    return tuple(
        ClassMetrics(
            label=_plain(label),
            precision=float(stats["precision"][i]),
            recall=float(stats["recall"][i]),
            f1=float(stats["f1"][i]),
            support=float(stats["support"][i]),
            precision_interval=precision_ci[i],
            recall_interval=recall_ci[i],
        )
        for i, label in enumerate(labels)
    )


def _encoded_and_counted(y_true, y_pred, labels, sample_weight):
    """(encoded labels, confusion matrix); small non-negative integer labels take the
    fused one-pass path (the common case: class indices from a model)."""
    if labels is None and sample_weight is None:
        true, pred = checked_pair(y_true, y_pred)
        if true.dtype.kind in "iu" and pred.dtype.kind in "iu":
            fused = dense_confusion(true, pred)
            if fused is not None:
                cm, high = fused
                return Encoded(true, pred, np.arange(high + 1), None, dense=True), cm
    enc = encode_labels(y_true, y_pred, labels=labels, sample_weight=sample_weight)
    return enc, confusion_counts(enc.true, enc.pred, len(enc.labels), enc.weight)


def _probability_metrics(enc, proba, metrics: dict[str, float]):
    """ROC AUC, log loss, Brier, calibration and top-k accuracy from ``proba``, added to
    ``metrics``; returns (AUC per class, top-k accuracies)."""
    k = len(enc.labels)
    p = check_proba(proba, n_rows=len(enc.true), n_labels=k)
    auc_per_class = prob.roc_auc_per_class(enc.true, p, enc.weight)
    if k == 2:
        metrics["roc_auc"] = float(auc_per_class[1])
    elif not np.isnan(auc_per_class).all():
        metrics["roc_auc"] = float(np.nanmean(auc_per_class))
    metrics["log_loss"] = prob.log_loss(enc.true, p, enc.weight)
    metrics["brier_score"] = prob.brier_score_loss(enc.true, p, enc.weight)
    metrics["expected_calibration_error"] = prob.expected_calibration_error(enc.true, p, enc.weight)
    top_k: dict[int, float] = {}
    for top in (2, 3, 5):
        if top < k:
            top_k[top] = prob.top_k_accuracy(enc.true, p, top, enc.weight)
            metrics[f"top_{top}_accuracy"] = top_k[top]
    return auc_per_class, top_k


def evaluate(
    y_true: Any,
    y_pred: Any,
    *,
    proba: Any = None,
    labels: Any = None,
    sample_weight: Any = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
    max_bias_pairs: int = 5,
) -> EvaluationReport:
    """Evaluate classification predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Labels: ints or strings; numpy, lists, polars Series or torch tensors.
    proba : array-like of shape (n, k), optional
        Class probabilities, columns in the order of ``labels``. Adds ROC AUC
        (one-vs-rest macro; binary for two labels), log loss, Brier score, expected
        calibration error and top-k accuracy.
    labels : array-like, optional
        All classes, in order. Default: sorted union of ``y_true`` and ``y_pred``.
    sample_weight : array-like of shape (n,), optional
    n_bootstrap : int
        Bootstrap replicates for the macro-F1 interval (0 disables it). Accuracy and
        the per-class rates get Wilson intervals; macro F1 is bootstrapped only where the
        bootstrap is valid (30+ rows, 5+ right and 5+ wrong answers), else
        ``interval_notes`` says why it has none.
    confidence : float
        Interval coverage.
    random_state : int
        Seed of the bootstrap; the same seed gives the same intervals.

    Examples
    --------
    >>> report = evaluate([0, 1, 1, 2], [0, 1, 2, 2])
    >>> round(report.accuracy, 2)
    0.75
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be >= 0, got {n_bootstrap!r}")
    enc, cm = _encoded_and_counted(y_true, y_pred, labels, sample_weight)
    if enc.dense:
        # Inferred integer labels: keep the classes that occur in y_true or y_pred.
        present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
        cm = cm[present][:, present]
        enc = enc.compress(present)
    metrics = count_metrics(cm)
    bias, pairs = class_bias(cm, enc.labels, max_bias_pairs)
    intervals, notes = report_intervals(
        cm, enc, metrics["accuracy"], n_bootstrap, confidence, random_state
    )
    auc_per_class, top_k = None, {}
    if proba is not None:
        auc_per_class, top_k = _probability_metrics(enc, proba, metrics)
    return EvaluationReport(
        labels=tuple(_plain(x) for x in enc.labels),
        n_samples=len(enc.true),
        total_weight=float(cm.sum()),
        confusion=_frozen(cm),
        metrics=MappingProxyType(metrics),
        per_class=_per_class(cm, enc.labels, confidence),
        class_bias=bias,
        asymmetric_pairs=pairs,
        intervals=MappingProxyType(intervals),
        confidence=confidence,
        roc_auc_per_class=None if auc_per_class is None else _frozen(auc_per_class),
        top_k=MappingProxyType(top_k),
        interval_notes=MappingProxyType(notes),
    )
