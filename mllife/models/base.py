"""The interface every candidate model implements, whatever its framework."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mllife.preprocess.images import ImagePreprocessor, preprocessor_from_state
from mllife.preprocess.pixels import PixelSet
from mllife.preprocess.tables import TablePreprocessor

__all__ = ["FitResult", "Model", "ProgressLog"]

ProgressLog = Callable[[str], None]


@dataclass(frozen=True)
class FitResult:
    seconds: float
    #: per-epoch (or per-trial) records, for the asset metadata and the store
    history: list[dict[str, Any]] = field(default_factory=list)


class Model(ABC):
    """A trained (or trainable) classifier bundled with its preprocessing.

    ``predict`` and ``predict_proba`` take *raw* inputs (paths, bytes, images) and run the
    model's own preprocessing, so evaluation and serving share one code path.
    """

    kind: str
    #: where a pretrained backbone came from ("backbone: 245 of 245 tensors from ...");
    #: None for a model trained from scratch
    backbone_summary: str | None = None

    def __init__(
        self,
        *,
        name: str,
        classes: Sequence[str],
        preprocessor: ImagePreprocessor | TablePreprocessor,
        params: dict[str, Any],
    ) -> None:
        self.name = name
        self.classes = [str(c) for c in classes]
        self.preprocessor = preprocessor
        self.params = dict(params)

    def saved_common(self, artifact_format: str) -> dict[str, Any]:
        """What every artifact format stores the same way (read back by saved_fields and
        restore_common)."""
        common = {
            "format": artifact_format,
            "name": self.name,
            "classes": self.classes,
            "preprocessor": self.preprocessor.state(),
            "params": self.params,
        }
        if self.backbone_summary is not None:  # absent otherwise: the same bytes as before
            common["backbone_summary"] = self.backbone_summary
        return common

    def restore_common(self, payload: dict[str, Any]) -> None:
        """What ``saved_common`` stored that is not a constructor argument."""
        self.backbone_summary = payload.get("backbone_summary")

    @staticmethod
    def saved_fields(payload: dict[str, Any]) -> dict[str, Any]:
        """The constructor arguments every artifact format stores the same way."""
        return {
            "name": payload["name"],
            "classes": payload["classes"],
            "preprocessor": preprocessor_from_state(payload["preprocessor"]),
            "params": payload["params"],
        }

    @abstractmethod
    def fit(
        self,
        x_train: torch.Tensor,
        y_train: np.ndarray,
        x_val: torch.Tensor,
        y_val: np.ndarray,
        *,
        log: ProgressLog,
    ) -> FitResult:
        """Train on preprocessed tensors; ``y`` are indices into ``classes``."""

    @abstractmethod
    def predict_proba_features(self, x: torch.Tensor) -> np.ndarray:
        """Class probabilities (N, n_classes) for preprocessed inputs."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The artifact's bytes: deterministic for the same trained model."""

    def features(self, x) -> torch.Tensor:
        """Preprocessed inputs as one tensor: ``x`` itself, or a :class:`PixelSet`'s
        pixels normalised (estimators that need a matrix hold it in memory)."""
        if isinstance(x, PixelSet):
            return self.preprocessor.normalize(x.all())
        return x

    def predict_proba(self, inputs: Any) -> np.ndarray:
        """Class probabilities for raw inputs: images (paths, bytes, arrays, or a
        :class:`PixelSet`) or table rows (a polars frame or a list of dicts)."""
        if isinstance(inputs, PixelSet):
            return self.predict_proba_features(inputs)
        return self.predict_proba_features(self.preprocessor.transform(inputs))

    def predict(self, inputs: Any) -> np.ndarray:
        """Predicted class names (strings) for raw inputs."""
        proba = self.predict_proba(inputs)
        return np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]
