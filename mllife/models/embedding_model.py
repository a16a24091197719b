"""A frozen pretrained backbone turns each image into a vector once; a scikit-learn
classifier learns on the vectors. The fast, strong path for a few hundred or a few
thousand photos: no backbone training, and the embeddings are cached on disk by
(backbone, preprocessing, content hash), so every candidate and every later run reuses
them. The artifact holds both parts and serves like any model.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mllife._errors import ArtifactError, TrainingError
from mllife.models._layout import for_inference
from mllife.models.base import FitResult, Model, ProgressLog
from mllife.models.networks import build_network, classifier_head, head_name, unwrapped
from mllife.models.sklearn_model import fit_estimator, library_versions
from mllife.preprocess.pixels import PixelSet
from mllife.storage.array_cache import read_array, write_array
from mllife.storage.pickles import loads as legacy_loads

__all__ = ["EmbeddingCache", "EmbeddingModel"]

FORMAT = "mllife.embedding/1"
DEFAULT_ESTIMATOR = "sklearn.linear_model.LogisticRegression"


class EmbeddingCache:
    """``<folder>/<backbone>/<preprocessing>/<sha[:2]>/<sha>.npy``: one image's vector."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.computed = 0  # vectors computed (not read from the cache) by this process

    def path(self, backbone: str, settings: str, sha256: str) -> Path:
        return self.folder / backbone / settings / sha256[:2] / f"{sha256}.npy"

    def get(self, backbone: str, settings: str, sha256: str) -> np.ndarray | None:
        # verified: an entry changed on disk is computed again (with a warning)
        return read_array(self.path(backbone, settings, sha256))

    def put(self, backbone: str, settings: str, sha256: str, vector: np.ndarray) -> None:
        write_array(self.path(backbone, settings, sha256), vector)


def _backbone(architecture: str, input_shape, n_classes: int) -> nn.Module:
    network = build_network(
        architecture=architecture,
        module=None,
        n_classes=n_classes,
        input_shape=input_shape,
        pretrained=True,
        params={},
    )
    target = unwrapped(network)
    head = head_name(target)
    parent, attribute, _ = classifier_head(network)
    setattr(parent, attribute, nn.Identity())  # the vector before the head
    target.replaced_head = head  # the weights file's head is not loaded, not missing
    return network.eval()


class EmbeddingModel(Model):
    kind = "embedding"

    def __init__(
        self,
        *,
        architecture: str,
        backbone_label: str,
        estimator_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.architecture = architecture
        self.backbone_label = backbone_label
        self.estimator_path = estimator_path or DEFAULT_ESTIMATOR
        self.network = _backbone(architecture, self.preprocessor.input_shape, len(self.classes))
        for param in self.network.parameters():
            param.requires_grad = False
        self.estimator: Any = None
        self.cache: EmbeddingCache | None = None
        self.device = torch.device("cpu")

    # -- embeddings --------------------------------------------------------------------

    def _forward(self, normalized: torch.Tensor) -> np.ndarray:
        network, batch = for_inference(self.network, normalized, self.device)
        with torch.no_grad():
            return network(batch).float().cpu().numpy()

    def embed(self, x) -> np.ndarray:
        """(N, D) vectors: from the cache for a :class:`PixelSet`'s known images,
        computed (and cached) for the rest; computed for preprocessed tensors."""
        if not isinstance(x, PixelSet):
            return np.concatenate([self._forward(b) for b in torch.split(x, 256)])
        settings = self.preprocessor.settings_key
        out: list[np.ndarray | None] = [None] * len(x)
        if self.cache is not None:
            for i, sha in enumerate(x.hashes):
                out[i] = self.cache.get(self.backbone_label, settings, sha)
        missing = [i for i, v in enumerate(out) if v is None]
        for start in range(0, len(missing), 128):
            chunk = missing[start : start + 128]
            pixels = torch.stack([x[i] for i in chunk])
            vectors = self._forward(self.preprocessor.normalize(pixels))
            for i, vector in zip(chunk, vectors, strict=True):
                out[i] = vector
                if self.cache is not None:
                    self.cache.put(self.backbone_label, settings, x.hashes[i], vector)
                    self.cache.computed += 1
        return np.stack(out)

    # -- the classifier ----------------------------------------------------------------

    def fit(self, x_train, y_train, x_val, y_val, *, log: ProgressLog) -> FitResult:
        started = time.perf_counter()
        train, val = self.embed(x_train), self.embed(x_val)
        estimator = fit_estimator(
            self.estimator_path, self.params, train, y_train, name=self.name, log=log
        )
        self.estimator = estimator
        val_acc = float((estimator.predict(val) == np.asarray(y_val)).mean())
        seconds = time.perf_counter() - started
        log(
            f"{self.name}: {train.shape[1]}-d embeddings of {len(train)} images;"
            f" fitted in {seconds:.2f} s, validation accuracy {val_acc:.4f}"
        )
        return FitResult(seconds=seconds, history=[{"validation_accuracy": val_acc}])

    def predict_proba_features(self, x) -> np.ndarray:
        if self.estimator is None:
            raise TrainingError(f"model {self.name!r} is not fitted")
        return np.asarray(self.estimator.predict_proba(self.embed(x)), dtype=np.float64)

    # -- artifacts ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        state = {k: v.detach().cpu().numpy() for k, v in self.network.state_dict().items()}
        payload = {
            **self.saved_common(FORMAT),
            "architecture": self.architecture,
            "backbone_label": self.backbone_label,
            "backbone_state": state,
            "estimator_path": self.estimator_path,
            "estimator": self.estimator,
            "versions": library_versions(),
        }
        return pickle.dumps(payload, protocol=5)

    @classmethod
    def from_trusted_bytes(cls, data: bytes) -> EmbeddingModel:
        """Unpickle an artifact. Only call after its hash was found in the store."""
        payload = legacy_loads(data)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ArtifactError("not an mllife embedding artifact")
        model = cls(
            architecture=payload["architecture"],
            backbone_label=payload["backbone_label"],
            estimator_path=payload["estimator_path"],
            **cls.saved_fields(payload),
        )
        state = {k: torch.from_numpy(v) for k, v in payload["backbone_state"].items()}
        model.network.load_state_dict(state)
        model.estimator = payload["estimator"]
        model.restore_common(payload)
        return model
