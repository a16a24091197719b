"""Hyperparameter search on the validation split: grid or seeded random, every trial kept.

A trial that fails (a parameter the estimator refuses, a diverging loss, ...) is recorded
with its reason and the search goes on; only when every trial fails does the search
fail, listing each reason.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from mllife._errors import TrainingError
from mllife.config.project import CandidateConfig, RangeConfig
from mllife.metrics import evaluate
from mllife.models.base import Model, ProgressLog

__all__ = ["SearchResult", "Trial", "run_search", "trial_params"]

DEFAULT_METRIC = "macro_f1"


@dataclass(frozen=True)
class Trial:
    index: int
    params: dict[str, Any]
    status: str  # "ok" or "failed"
    #: validation score (the cross-validated mean when cv is set)
    score: float | None
    validation_score: float | None
    seconds: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchResult:
    model: Model
    best: Trial
    trials: tuple[Trial, ...]
    metric: str
    fit_seconds: float
    history: list[dict[str, Any]]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _draw(space: RangeConfig | list[Any], rng: np.random.Generator) -> Any:
    if isinstance(space, list):
        return _plain(space[int(rng.integers(len(space)))])
    if space.log:
        value = math.exp(rng.uniform(math.log(space.low), math.log(space.high)))
    else:
        value = rng.uniform(space.low, space.high)
    return int(round(value)) if space.integer else float(value)


def trial_params(spec: CandidateConfig) -> list[dict[str, Any]]:
    """Every trial's parameters: the fixed ``params`` overlaid with the searched ones."""
    fixed = dict(spec.params)
    search = spec.search
    if search is None or not search.space:
        return [fixed]
    names = sorted(search.space)
    if search.method == "grid":
        grids = [search.space[name] for name in names]
        return [
            {**fixed, **dict(zip(names, combo, strict=True))} for combo in itertools.product(*grids)
        ]
    rng = np.random.default_rng(search.seed)
    return [
        {**fixed, **{n: _draw(search.space[n], rng) for n in names}} for _ in range(search.trials)
    ]


def _score(model: Model, x: torch.Tensor, y: np.ndarray, metric: str) -> float:
    predicted = model.predict_proba_features(x).argmax(axis=1)
    labels = np.arange(len(model.classes))
    return evaluate(y, predicted, labels=labels, n_bootstrap=0).metrics[metric]


def _cross_validated(
    build: Callable[[dict[str, Any]], Model],
    params: dict[str, Any],
    x: torch.Tensor,
    y: np.ndarray,
    *,
    folds: int,
    seed: int,
    metric: str,
) -> float:
    from sklearn.model_selection import StratifiedKFold

    scores = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_idx, held_idx in splitter.split(np.zeros(len(y)), y):
        model = build(params)
        model.fit(x[fit_idx], y[fit_idx], x[held_idx], y[held_idx], log=lambda _: None)
        scores.append(_score(model, x[held_idx], y[held_idx], metric))
    return float(np.mean(scores))


def run_search(
    spec: CandidateConfig,
    *,
    build: Callable[[dict[str, Any]], Model],
    x_train: torch.Tensor,
    y_train: np.ndarray,
    x_val: torch.Tensor,
    y_val: np.ndarray,
    log: ProgressLog,
) -> SearchResult:
    """Train one model per trial; keep the best by the search metric (on validation)."""
    search = spec.search
    metric = search.metric if search else DEFAULT_METRIC
    folds = search.cv if search and spec.kind == "sklearn" else 0
    candidates = trial_params(spec)
    trials: list[Trial] = []
    best: tuple[float, Model, Trial, Any] | None = None
    for index, params in enumerate(candidates):
        started = time.perf_counter()
        try:
            cv_score = None
            if folds >= 2:
                cv_score = _cross_validated(
                    build, params, x_train, y_train, folds=folds, seed=search.seed, metric=metric
                )
            model = build(params)
            fit = model.fit(x_train, y_train, x_val, y_val, log=log)
            validation = _score(model, x_val, y_val, metric)
        except Exception as exc:  # recorded as this trial's failure; the search goes on
            trial = Trial(
                index,
                params,
                "failed",
                None,
                None,
                time.perf_counter() - started,
                f"{type(exc).__name__}: {exc}",
            )
            trials.append(trial)
            log(f"{spec.name}: trial {index + 1}/{len(candidates)} FAILED {params}: {trial.error}")
            continue
        score = cv_score if cv_score is not None else validation
        trial = Trial(index, params, "ok", score, validation, time.perf_counter() - started)
        trials.append(trial)
        log(f"{spec.name}: trial {index + 1}/{len(candidates)} {metric}={score:.4f} {params}")
        if best is None or score > best[0]:
            best = (score, model, trial, fit)
    if best is None:
        reasons = "; ".join(f"trial {t.index} {t.params}: {t.error}" for t in trials)
        raise TrainingError(f"candidate {spec.name!r}: every trial failed: {reasons}")
    _, model, trial, fit = best
    fit_seconds = sum(t.seconds for t in trials)
    return SearchResult(model, trial, tuple(trials), metric, fit_seconds, fit.history)
