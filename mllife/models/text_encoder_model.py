"""A pretrained sentence encoder's vectors with a scikit-learn classifier on top: the
strong path for short texts without a GPU. The vectors are cached on disk by (encoder,
normalised text's sha256), digest-checked, so every candidate and every later run
reuses them.

``params``: ``combine = true`` puts the text's TF-IDF n-grams (and any other table
columns) beside the vector; ``fine_tune_epochs = N`` first trains the encoder itself with a
linear head on the training split (AdamW, linear decay; CPU for a few epochs, CUDA when
there is one), and the classifier then learns on the fine-tuned vectors. The remaining
params go to the estimator. The artifact holds the encoder (weights, config, tokenizer)
and the classifier, and serves like any model.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np

from mllife._errors import ArtifactError, TrainingError
from mllife.models.base import FitResult, Model, ProgressLog
from mllife.models.embedding_model import DEFAULT_ESTIMATOR, EmbeddingCache
from mllife.models.sentence_encoder import EncoderFiles, SentenceEncoder, read_encoder_folder
from mllife.models.sklearn_model import fit_estimator, library_versions
from mllife.preprocess.text import TextFeatures
from mllife.storage.pickles import loads as legacy_loads

__all__ = ["TextEncoderModel"]

FORMAT = "mllife.text_encoder/1"
#: params read by the model itself; the rest are the estimator's
OWN_PARAMS = ("combine", "fine_tune_epochs", "fine_tune_lr", "batch_size", "seed")


class TextEncoderModel(Model):
    kind = "text_encoder"

    def __init__(
        self, *, files: EncoderFiles, source: str | None = None,
        estimator_path: str | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.encoder = SentenceEncoder(files, source=source)
        self.estimator_path = estimator_path or DEFAULT_ESTIMATOR
        self.estimator: Any = None
        self.cache: EmbeddingCache | None = None
        #: the encoder's identity in the cache: its weights file, or after fine-tuning
        #: the fine-tuned weights
        self.encoder_label = files.label()

    @classmethod
    def from_folder(cls, folder: Path, *, root: Path | None = None, **kwargs) -> TextEncoderModel:
        files = read_encoder_folder(folder)
        model = cls(files=files, source=str(folder), **kwargs)
        shown = folder.relative_to(root) if root and folder.is_relative_to(root) else folder
        model.backbone_summary = (
            f"backbone: {model.encoder.loaded} of {len(model.encoder.network.state_dict())}"
            f" tensors from {shown} (sha256 {files.sha256[:12]}); tokenizer"
            f" {len(files.tokenizer_json) // 1024} KB inside the artifact"
        )
        return model

    # -- vectors -----------------------------------------------------------------------

    def _option(self, name: str, default):
        return self.params.get(name, default)

    def embed(self, texts: list[str]) -> np.ndarray:
        """(N, D) vectors: cached ones read, the rest encoded (and cached). Without a
        cache (serving) every text is encoded, nothing hashed or written."""
        batch_size = int(self._option("batch_size", 64))
        if self.cache is None:
            return self.encoder.encode(texts, batch_size=batch_size)
        settings = f"tokens{self.encoder.files.max_tokens}"
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        out = [self.cache.get(self.encoder_label, settings, k) for k in keys]
        missing = [i for i, v in enumerate(out) if v is None]
        vectors = self.encoder.encode([texts[i] for i in missing], batch_size=batch_size)
        for i, vector in zip(missing, vectors, strict=True):
            out[i] = vector
            self.cache.put(self.encoder_label, settings, keys[i], vector)
            self.cache.computed += 1
        if not texts:
            return np.zeros((0, self.encoder.dimension), dtype=np.float32)
        return np.stack(out)

    def _inputs(self, x: TextFeatures):
        if not isinstance(x, TextFeatures):
            raise TrainingError(
                f"candidate {self.name!r} (text_encoder) needs a table with a text column;"
                " this project's contract has none"
            )
        vectors = self.embed(x.texts)
        if not self._option("combine", False):
            return vectors
        import scipy.sparse as sp

        return sp.hstack([x.matrix, sp.csr_matrix(vectors)], format="csr")

    # -- training ----------------------------------------------------------------------

    def fit(self, x_train, y_train, x_val, y_val, *, log: ProgressLog) -> FitResult:
        started = time.perf_counter()
        history: list[dict[str, Any]] = []
        epochs = int(self._option("fine_tune_epochs", 0))
        if epochs:
            from mllife.models.text_fine_tune import fine_tune

            history = fine_tune(self, x_train.texts, np.asarray(y_train), epochs=epochs, log=log)
        estimator_params = {k: v for k, v in self.params.items() if k not in OWN_PARAMS}
        train, val = self._inputs(x_train), self._inputs(x_val)
        self.estimator = fit_estimator(
            self.estimator_path, estimator_params, train, y_train, name=self.name, log=log
        )
        val_acc = float((self.estimator.predict(val) == np.asarray(y_val)).mean())
        seconds = time.perf_counter() - started
        log(
            f"{self.name}: {self.encoder.dimension}-d sentence vectors of {len(x_train)} texts"
            f"{' with their n-grams' if self._option('combine', False) else ''}"
            f"{f' ({epochs} fine-tuning epochs)' if epochs else ''}; fitted in {seconds:.1f} s,"
            f" validation accuracy {val_acc:.4f}; {self.encoder.truncated} texts cut at"
            f" {self.encoder.files.max_tokens} tokens"
        )
        return FitResult(seconds=seconds, history=[*history, {"validation_accuracy": val_acc}])

    def predict_proba_features(self, x) -> np.ndarray:
        if self.estimator is None:
            raise TrainingError(f"model {self.name!r} is not fitted")
        return np.asarray(self.estimator.predict_proba(self._inputs(x)), dtype=np.float64)

    # -- artifacts ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        files = self.encoder.files
        payload = {
            **self.saved_common(FORMAT),
            "encoder": {
                "config": files.config,
                "tokenizer_json": files.tokenizer_json,
                "state": self.encoder.state(),
                "pooling": files.pooling,
                "normalize": files.normalize,
                "max_tokens": files.max_tokens,
                "sha256": files.sha256,
            },
            "encoder_label": self.encoder_label,
            "estimator_path": self.estimator_path,
            "estimator": self.estimator,
            "versions": library_versions(),
        }
        return pickle.dumps(payload, protocol=5)

    @classmethod
    def from_trusted_bytes(cls, data: bytes) -> TextEncoderModel:
        """Unpickle an artifact. Only call after its hash was found in the store."""
        payload = legacy_loads(data)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ArtifactError("not an mllife text encoder artifact")
        model = cls(
            files=EncoderFiles(**payload["encoder"]),
            estimator_path=payload["estimator_path"],
            **cls.saved_fields(payload),
        )
        model.encoder_label = payload["encoder_label"]
        model.estimator = payload["estimator"]
        model.restore_common(payload)
        return model
