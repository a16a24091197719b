"""scikit-learn estimators (by import path) as mllife models."""

from __future__ import annotations

import importlib
import pickle
import time
import warnings
from typing import Any

import numpy as np
import torch

from mllife._errors import ArtifactError, ConfigError, TrainingError
from mllife.models.base import FitResult, Model, ProgressLog
from mllife.preprocess.text import TextFeatures
from mllife.storage.pickles import loads as legacy_loads

__all__ = [
    "ArtifactVersionWarning",
    "SklearnModel",
    "fit_estimator",
    "import_estimator",
    "library_versions",
]

FORMAT = "mllife.sklearn/1"


def import_estimator(path: str) -> type:
    """The estimator class at ``path`` (``package.module.Class``)."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ConfigError(f"estimator {path!r} is not an import path like 'sklearn.svm.SVC'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"estimator {path!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    estimator = getattr(module, class_name, None)
    if estimator is None:
        raise ConfigError(f"estimator {path!r}: module {module_name!r} has no {class_name!r}")
    from sklearn.base import BaseEstimator

    # A class deriving from scikit-learn's BaseEstimator, not any callable with the right
    # attribute names (unittest.mock.call has every attribute). Note that importing the
    # module already ran its code: the configuration is trusted (README, Trust model).
    if not (isinstance(estimator, type) and issubclass(estimator, BaseEstimator)):
        raise ConfigError(
            f"estimator {path!r} is not a scikit-learn estimator class (one deriving from"
            " sklearn.base.BaseEstimator)"
        )
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict_proba")):
        raise ConfigError(f"estimator {path!r} has no fit/predict_proba: not a classifier")
    return estimator


def library_versions() -> dict[str, str]:
    """The versions a pickled estimator depends on, stamped into its artifact."""
    import platform

    import sklearn

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "python": platform.python_version()}  # fmt: skip


class ArtifactVersionWarning(UserWarning):
    """A model artifact was saved with other library versions than the ones loading it."""


def _warn_on_version_mismatch(name: str, saved: dict[str, str] | None) -> None:
    if not saved:
        return
    current = library_versions()
    changed = {k: (v, current.get(k)) for k, v in saved.items() if current.get(k) != v}
    if changed:
        text = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in sorted(changed.items()))
        warnings.warn(
            f"model {name!r} was saved with other library versions ({text}): scikit-learn"
            " does not promise that a pickled estimator predicts the same across versions;"
            " retrain it (mllife run) or pin the versions it was saved with",
            ArtifactVersionWarning,
            stacklevel=3,
        )


def fit_estimator(path: str, params: dict, x, y, *, name: str, log: ProgressLog):
    """A fitted estimator of class ``path`` with ``params``; its warnings go to ``log``."""
    cls = import_estimator(path)
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise TrainingError(f"candidate {name!r}: {path} rejected params {params}: {exc}") from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(x, y)
    for warning in caught:
        log(f"{name}: {warning.category.__name__}: {warning.message}")
    return estimator


class SklearnModel(Model):
    kind = "sklearn"

    def __init__(self, *, estimator_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.estimator_path = estimator_path
        self.estimator: Any = None

    def _features(self, x):
        if isinstance(x, TextFeatures):  # sparse where the estimator takes it (linear ones)
            return x.matrix if self._takes_sparse() else x.dense(model=self.name)
        return x.reshape(x.shape[0], -1).numpy()

    def _takes_sparse(self) -> bool:
        estimator = self.estimator
        if estimator is None:
            estimator = import_estimator(self.estimator_path)(**self.params)
        return bool(estimator.__sklearn_tags__().input_tags.sparse)

    def fit(self, x_train, y_train, x_val, y_val, *, log: ProgressLog) -> FitResult:
        started = time.perf_counter()
        estimator = fit_estimator(
            self.estimator_path, self.params, self._features(self.features(x_train)), y_train,
            name=self.name, log=log,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        missing = sorted(set(range(len(self.classes))) - {int(c) for c in estimator.classes_})
        if missing:
            raise TrainingError(
                f"candidate {self.name!r}: training data lacks classes"
                f" {[self.classes[i] for i in missing]}"
            )
        self.estimator = estimator
        val_acc = float((estimator.predict(self._features(self.features(x_val))) == y_val).mean())
        log(f"{self.name}: fitted in {seconds:.2f} s, validation accuracy {val_acc:.4f}")
        return FitResult(seconds=seconds, history=[{"validation_accuracy": val_acc}])

    def predict_proba_features(self, x: torch.Tensor) -> np.ndarray:
        if self.estimator is None:
            raise TrainingError(f"model {self.name!r} is not fitted")
        return np.asarray(
            self.estimator.predict_proba(self._features(self.features(x))), dtype=np.float64
        )

    def to_bytes(self) -> bytes:
        payload = {
            **self.saved_common(FORMAT),
            "estimator_path": self.estimator_path,
            "estimator": self.estimator,
            "versions": library_versions(),
        }
        return pickle.dumps(payload, protocol=5)

    @classmethod
    def from_trusted_bytes(cls, data: bytes) -> SklearnModel:
        """Unpickle an artifact. Only call after its hash was found in the store."""
        payload = legacy_loads(data)  # the caller verified the hash; old layouts load
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ArtifactError("not an mllife scikit-learn artifact")
        model = cls(estimator_path=payload["estimator_path"], **cls.saved_fields(payload))
        model.estimator = payload["estimator"]
        _warn_on_version_mismatch(payload["name"], payload.get("versions"))
        return model
