"""Class bias: where each class's errors go, and the pairs of classes confused more in
one direction than the other (the articles' "confusion matrix and class bias")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ClassBias", "ConfusionPair", "class_bias"]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class ClassBias:
    """Where one class's errors go."""

    label: Any
    support: float
    error_rate: float
    #: (predicted label, share of this class's rows), largest first, errors only
    destinations: tuple[tuple[Any, float], ...]


@dataclass(frozen=True)
class ConfusionPair:
    """Two classes confused more in one direction than the other."""

    a: Any
    b: Any
    rate_a_as_b: float  # share of true a predicted as b
    rate_b_as_a: float

    @property
    def asymmetry(self) -> float:
        return abs(self.rate_a_as_b - self.rate_b_as_a)

    def sentence(self) -> str:
        return (
            f"{self.a} is predicted as {self.b} in {self.rate_a_as_b:.0%} of cases,"
            f" {self.b} as {self.a} in {self.rate_b_as_a:.0%}"
        )


def class_bias(cm: np.ndarray, labels: np.ndarray, max_pairs: int) -> tuple[tuple, tuple]:
    support = cm.sum(axis=1).astype(np.float64)
    rate = np.divide(cm, support[:, None], out=np.zeros(cm.shape), where=support[:, None] != 0)
    bias = []
    for i, label in enumerate(labels):
        off = [(j, rate[i, j]) for j in np.argsort(-rate[i], kind="stable") if j != i and cm[i, j]]
        bias.append(
            ClassBias(
                label=_plain(label),
                support=float(support[i]),
                error_rate=float(1 - rate[i, i]) if support[i] else 0.0,
                destinations=tuple((_plain(labels[j]), float(r)) for j, r in off[:3]),
            )
        )
    k = len(labels)
    upper = np.triu_indices(k, 1)
    asym = np.abs(rate - rate.T)[upper]
    order = np.argsort(-asym, kind="stable")
    pairs = []
    for idx in order[:max_pairs]:
        if asym[idx] <= 0:
            break
        i, j = upper[0][idx], upper[1][idx]
        if rate[j, i] > rate[i, j]:
            i, j = j, i  # a is the class more often mistaken for b
        pairs.append(
            ConfusionPair(
                _plain(labels[i]), _plain(labels[j]), float(rate[i, j]), float(rate[j, i])
            )
        )
    return tuple(bias), tuple(pairs)
