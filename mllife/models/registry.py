"""Model artifacts: content-addressed files whose sha256 the store vouches for.

A model is written once, under its own hash, atomically (temp file + rename). Loading
checks the file's hash against the one asked for, and refuses a scikit-learn pickle
whose hash the store has never recorded: unpickling runs code, so only files this
project wrote are trusted. Torch artifacts load with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mllife._errors import ArtifactError
from mllife.storage.files import sha256_of, write_atomically
from mllife.storage.store import Store

if TYPE_CHECKING:
    from mllife.models.base import Model

__all__ = ["ModelRef", "champion_ref", "load_model", "save_model"]

_EXTENSIONS = {"sklearn": "pkl", "torch": "pt", "embedding": "pkl", "text_encoder": "pkl"}


@dataclass(frozen=True)
class ModelRef:
    """What lineage passes between assets: a model by name, kind and content hash."""

    name: str
    kind: str
    model_hash: str
    #: path relative to the project's artifacts folder
    relative_path: str
    size_bytes: int

    @classmethod
    def from_row(cls, row: dict) -> ModelRef:
        """The reference of a model recorded in the store's ``models`` table."""
        return cls(
            row["name"],
            row["kind"],
            row["model_hash"],
            row["artifact_path"],
            int(row["size_bytes"]),
        )

    def path(self, artifacts_dir: Path) -> Path:
        return artifacts_dir / self.relative_path

    def to_dict(self) -> dict:
        return asdict(self)


def save_model(model: Model, *, artifacts_dir: Path) -> ModelRef:
    """Write ``model`` under ``models/<sha256>.<ext>``; an existing identical file is kept."""
    data = model.to_bytes()
    digest = hashlib.sha256(data).hexdigest()
    relative = f"models/{digest}.{_EXTENSIONS[model.kind]}"
    path = artifacts_dir / relative
    if not (path.is_file() and sha256_of(path) == digest):
        write_atomically(path, data)
    return ModelRef(model.name, model.kind, digest, relative, len(data))


def load_model(ref: ModelRef, *, artifacts_dir: Path, store: Store | None) -> Model:
    """Load a model artifact after checking its bytes hash to ``ref.model_hash``.

    ``store`` must be given for scikit-learn artifacts: a pickle is loaded only when the
    store has a record of that exact hash.
    """
    path = ref.path(artifacts_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(
            f"model artifact {path} is missing (model {ref.name!r}, hash {ref.model_hash[:12]});"
            " re-materialize its candidate asset or restore the file"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref.model_hash:
        raise ArtifactError(
            f"model artifact {path} has hash {digest[:12]}, expected {ref.model_hash[:12]}:"
            " the file was changed or corrupted; refusing to load it"
        )
    if ref.kind == "torch":
        from mllife.models.torch_model import TorchModel

        return TorchModel.from_bytes(data)
    if ref.kind in ("sklearn", "embedding", "text_encoder"):
        if store is None or store.model_row(digest) is None:
            raise ArtifactError(
                f"refusing to unpickle {path}: its hash {digest[:12]} is not recorded in the"
                " store, so this project did not write it"
            )
        from mllife.models.embedding_model import EmbeddingModel
        from mllife.models.sklearn_model import SklearnModel
        from mllife.models.text_encoder_model import TextEncoderModel

        kind = {"sklearn": SklearnModel, "embedding": EmbeddingModel,
                "text_encoder": TextEncoderModel}[ref.kind]  # fmt: skip
        return kind.from_trusted_bytes(data)
    raise ArtifactError(f"unknown model kind {ref.kind!r} for {path}")


def champion_ref(store: Store) -> ModelRef | None:
    """The deployed champion's artifact reference, or None before the first promotion."""
    current = store.champion()
    if current is None:
        return None
    row = store.model_row(current.model_hash)
    if row is None:
        raise ArtifactError(
            f"the champion {current.model_hash[:12]} has no row in the store's models table;"
            " the store is inconsistent: restore it from a backup"
        )
    return ModelRef.from_row(row)


def recorded_backbone(store: Store, model_hash: str) -> str | None:
    """Where a model's pretrained backbone came from, as training recorded it with the
    model ("backbone: 294 of 294 tensors from ..."); None for a model without one."""
    import json

    row = store.model_row(model_hash)
    return json.loads(row["spec"] or "{}").get("backbone") if row else None
