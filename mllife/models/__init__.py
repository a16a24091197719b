"""Candidate models behind one interface (see :class:`mllife.models.base.Model`)."""

from __future__ import annotations

from typing import Any

from mllife.config import CandidateConfig
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
