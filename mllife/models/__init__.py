"""Models: one interface for scikit-learn and torch candidates (see :class:`Model`),
hyperparameter search, training, the content-addressed registry and DVC checkout."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mllife.config.project import CandidateConfig

if TYPE_CHECKING:
    from mllife.models.base import FitResult, Model
    from mllife.models.embedding_model import EmbeddingModel
    from mllife.models.sklearn_model import SklearnModel
    from mllife.models.torch_model import TorchModel

__all__ = ["EmbeddingModel", "FitResult", "Model", "SklearnModel", "TorchModel", "build_model"]

# Imported on first use (PEP 562): the Dagster code server and the run planner load the
# graph, which names these types, without importing torch (seconds of CPU per process).
_LAZY = {
    "FitResult": "mllife.models.base",
    "Model": "mllife.models.base",
    "EmbeddingModel": "mllife.models.embedding_model",
    "SklearnModel": "mllife.models.sklearn_model",
    "TorchModel": "mllife.models.torch_model",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_model(
    spec: CandidateConfig, *, classes: list[str], preprocessor: Any, root: Path | None = None
) -> Model:
    """An untrained model for a candidate spec from ``mllife.toml``; pretrained weights
    (``spec.weights``, relative to ``root``) are loaded now, and the model normalises its
    images as its backbone expects."""
    from mllife.models.embedding_model import EmbeddingModel
    from mllife.models.networks import resolve_weights
    from mllife.models.sklearn_model import SklearnModel
    from mllife.models.torch_model import TorchModel
    from mllife.models.weights import load_backbone

    common = {"name": spec.name, "classes": classes, "params": spec.params}
    if spec.kind == "sklearn":
        return SklearnModel(estimator_path=spec.estimator, preprocessor=preprocessor, **common)
    if spec.kind == "text_encoder":
        from mllife.models.text_encoder_model import TextEncoderModel

        root = root or Path.cwd()
        folder = Path(spec.weights) if Path(spec.weights).is_absolute() else root / spec.weights
        return TextEncoderModel.from_folder(
            folder, root=root, estimator_path=spec.estimator, preprocessor=preprocessor,
            **common,
        )  # fmt: skip
    backbone = None
    if spec.weights:
        backbone = resolve_weights(spec.architecture, spec.weights, root=root or Path.cwd())
        mean, std = (spec.mean, spec.std) if spec.mean else (backbone.mean, backbone.std)
        preprocessor = preprocessor.with_normalization(mean, std)
    if spec.kind == "embedding":
        model = EmbeddingModel(
            architecture=spec.architecture,
            backbone_label=backbone.identity,
            estimator_path=spec.estimator,
            preprocessor=preprocessor,
            **common,
        )
    else:
        model = TorchModel(
            architecture=spec.architecture,
            module=spec.module,
            weights=None if backbone is None else {"path": str(backbone.path),
                                                   "label": backbone.identity},
            augment=None if spec.augment is None else spec.augment.model_dump(),
            preprocessor=preprocessor,
            **common,
        )  # fmt: skip
    if backbone is not None:
        loaded = load_backbone(
            model.network, backbone.path, architecture=spec.architecture or spec.module,
            weights_map=spec.weights_map,
        )  # fmt: skip
        model.backbone_summary = loaded.summary(root)
        if backbone.input_size and preprocessor.size != backbone.input_size:
            model.backbone_summary += (
                f"; trained at {backbone.input_size} px, fed {preprocessor.size} px"
            )
    return model
