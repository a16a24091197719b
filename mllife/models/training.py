"""Train one candidate on the train split, validated on the validation split."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mllife.config.project import CandidateConfig, ProjectConfig
from mllife.data.split import SplitSet
from mllife.models.environment import library_versions
from mllife.models.registry import ModelRef, save_model
from mllife.preprocess.inputs import make_preprocessor, model_inputs, pixel_set, split_rows
from mllife.storage.inbox import PostingRecorder
from mllife.storage.store import Store

if TYPE_CHECKING:  # torch and friends load with the first model, not with the graph
    from mllife.models.base import ProgressLog
    from mllife.models.search import Trial

__all__ = ["TrainedCandidate", "class_names", "place_model", "train_candidate"]


@dataclass(frozen=True)
class TrainedCandidate:
    ref: ModelRef
    fit_seconds: float
    data_version: str
    split_version: str
    history: list[dict[str, Any]] = field(default_factory=list)
    #: every search trial (one when the candidate has no search space)
    trials: tuple[Trial, ...] = ()
    search_metric: str = "macro_f1"
    best_params: dict[str, Any] = field(default_factory=dict)


def class_names(config: ProjectConfig, splits: SplitSet) -> list[str]:
    """Declared classes, or the labels present in the data, sorted."""
    if config.data.classes:
        return list(config.data.classes)
    return sorted(splits.rows["label"].unique().to_list())


def _training_inputs(config, splits, preprocessor, train, validation):
    """Tables: preprocessed tensors in memory. Images: :class:`PixelSet` streams (decoded
    once into the pixel cache), the normalisation learned in one streamed pass."""
    if config.data.kind != "images":
        x_train = preprocessor.fit_transform(
            model_inputs(train, config=config, columns=splits.columns)
        )
        x_val = preprocessor.transform(
            model_inputs(validation, config=config, columns=splits.columns)
        )
        return x_train, x_val
    x_train = pixel_set(train, config=config, preprocessor=preprocessor)
    held = x_train.held()  # a small split is read once, for the statistics and training
    preprocessor.fit_stats([held] if held is not None else x_train.batches())
    return x_train, pixel_set(validation, config=config, preprocessor=preprocessor)


def _checkpoint_path(
    config: ProjectConfig, spec: CandidateConfig, splits: SplitSet, lineage: str | None
) -> Path:
    """Where a torch candidate's per-epoch checkpoint lives: keyed by what the training
    depends on and by ``lineage`` (the run and the re-executions that resume it), so
    `mllife run --resume` after a kill continues the same training while another run
    training the same candidate at the same time never picks it up."""
    key = json.dumps(
        [spec.model_dump(mode="json"), splits.split_version, config.data.image_size, lineage],
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return config.shared_dir / "checkpoints" / f"{spec.name}-{digest}.pt"


def place_model(model, config: ProjectConfig) -> None:
    """The project's device and caches for a model built or loaded in this process."""
    from mllife.models.embedding_model import EmbeddingCache, EmbeddingModel
    from mllife.models.torch_model import TorchModel, pick_device

    if isinstance(model, TorchModel):
        model.device_setting = config.training.device
    if isinstance(model, EmbeddingModel):
        model.cache = EmbeddingCache(config.state_dir / "cache" / "embeddings")
        model.device = pick_device(config.training.device)
    if getattr(model, "kind", None) == "text_encoder":  # sentence vectors, cached alike
        model.cache = EmbeddingCache(config.state_dir / "cache" / "embeddings")


def _place(model, config: ProjectConfig, checkpoint: Path, params: dict) -> None:
    """Device, caches and checkpoint for a freshly built model."""
    from mllife.models.torch_model import TorchModel

    place_model(model, config)
    if isinstance(model, TorchModel):
        # one checkpoint per trial's parameters (a search trains several)
        trial = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
        model.checkpoint_path = checkpoint.with_name(
            f"{checkpoint.stem}-{trial.hexdigest()[:8]}.pt"
        )


def _record(
    store: Store | PostingRecorder,
    spec: CandidateConfig,
    result,
    ref: ModelRef,
    splits,
    run_id,
    lineage,
) -> None:
    """The kept model and every trial of its search, in the store."""
    summary = result.model.backbone_summary
    backbone = {"backbone": summary} if summary else {}  # where its weights came from
    store.record_model(
        model_hash=ref.model_hash,
        name=spec.name,
        kind=spec.kind,
        spec={
            **spec.model_dump(mode="json"),
            "params": result.best.params,
            **backbone,
            "environment": library_versions(),
        },  # fmt: skip
        data_version=splits.data_version,
        split_version=splits.split_version,
        artifact_path=ref.relative_path,
        size_bytes=ref.size_bytes,
        fit_seconds=result.fit_seconds,
        run_id=run_id,
    )
    store.record_trials(
        run_id=run_id,
        candidate=spec.name,
        metric=result.metric,
        trials=[t.to_dict() for t in result.trials],
        chosen=result.best.index,
        model_hash=ref.model_hash,
        data_version=splits.data_version,
        split_version=splits.split_version,
        lineage=lineage,
    )


def train_candidate(
    spec: CandidateConfig,
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store | PostingRecorder,
    run_id: str | None,
    log: ProgressLog,
    lineage: str | None = None,
) -> TrainedCandidate:
    """Search ``spec``'s parameters on train (scored on validation), keep the best model,
    save its artifact and record it and every trial in the store. ``lineage``: what the
    per-epoch checkpoints are scoped to (the first run of a chain of re-executions).

    The test split is never read here.
    """
    from mllife.models import build_model
    from mllife.models.search import run_search

    classes = class_names(config, splits)
    index = {label: i for i, label in enumerate(classes)}
    train = split_rows(splits.rows, "train")
    validation = split_rows(splits.rows, "validation")
    preprocessor = make_preprocessor(config, splits.columns, splits.rows)
    x_train, x_val = _training_inputs(config, splits, preprocessor, train, validation)
    y_train = np.array([index[v] for v in train["label"].to_list()])
    y_val = np.array([index[v] for v in validation["label"].to_list()])
    checkpoint = _checkpoint_path(config, spec, splits, lineage or run_id)

    def build(params: dict[str, Any]):
        model = build_model(
            spec.model_copy(update={"params": params}),
            classes=classes,
            preprocessor=preprocessor,
            root=config.root,
        )
        _place(model, config, checkpoint, params)
        return model

    result = run_search(
        spec, build=build, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, log=log
    )
    if result.model.backbone_summary:
        log(f"{spec.name}: {result.model.backbone_summary}")
    ref = save_model(result.model, artifacts_dir=config.artifacts_dir)
    _record(store, spec, result, ref, splits, run_id, lineage or run_id)
    failed = sum(t.status == "failed" for t in result.trials)
    log(
        f"{spec.name}: kept trial {result.best.index} of {len(result.trials)}"
        f" ({failed} failed) {result.metric}={result.best.score:.4f} {result.best.params};"
        f" saved {ref.relative_path}"
    )
    return TrainedCandidate(
        ref,
        result.fit_seconds,
        splits.data_version,
        splits.split_version,
        result.history,
        result.trials,
        result.metric,
        result.best.params,
    )
