"""Models: one interface for scikit-learn and torch candidates (see :class:`Model`),
hyperparameter search, training, the content-addressed registry and DVC checkout."""

from __future__ import annotations

from typing import Any

from mllife.config.project import CandidateConfig
from mllife.models.base import FitResult, Model
from mllife.models.sklearn_model import SklearnModel
from mllife.models.torch_model import TorchModel

__all__ = ["FitResult", "Model", "SklearnModel", "TorchModel", "build_model"]


def build_model(spec: CandidateConfig, *, classes: list[str], preprocessor: Any) -> Model:
    """An untrained model for a candidate spec from ``mllife.toml``."""
    common = {
        "name": spec.name,
        "classes": classes,
        "preprocessor": preprocessor,
        "params": spec.params,
    }
    if spec.kind == "sklearn":
        return SklearnModel(estimator_path=spec.estimator, **common)
    return TorchModel(architecture=spec.architecture, **common)
