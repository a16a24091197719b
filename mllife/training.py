"""Train one candidate on the train split, validated on the validation split."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mllife._errors import ConfigError, MllifeError, TrainingError
from mllife.config import CandidateConfig, ProjectConfig
from mllife.features import ImagePreprocessor
from mllife.inputs import load_inputs, split_rows
from mllife.models import build_model
from mllife.models.base import ProgressLog
from mllife.registry import ModelRef, save_model
from mllife.split import SplitSet
from mllife.store import Store

__all__ = ["TrainedCandidate", "class_names", "train_candidate"]


@dataclass(frozen=True)
class TrainedCandidate:
    ref: ModelRef
    fit_seconds: float
    data_version: str
    split_version: str
    history: list[dict[str, Any]] = field(default_factory=list)


def class_names(config: ProjectConfig, splits: SplitSet) -> list[str]:
    """Declared classes, or the labels present in the data, sorted."""
    if config.data.classes:
        return list(config.data.classes)
    return sorted(splits.rows["label"].unique().to_list())


def train_candidate(
    spec: CandidateConfig,
    splits: SplitSet,
    *,
    config: ProjectConfig,
    store: Store,
    run_id: str | None,
    log: ProgressLog,
) -> TrainedCandidate:
    """Fit ``spec`` on the train split; save the artifact and record it in the store.

    The test split is never read here.
    """
    classes = class_names(config, splits)
    index = {label: i for i, label in enumerate(classes)}
    train = split_rows(splits.rows, "train")
    validation = split_rows(splits.rows, "validation")
    train_inputs = load_inputs(train, root=config.root)
    val_inputs = load_inputs(validation, root=config.root)
    preprocessor = ImagePreprocessor(size=config.data.image_size)
    x_train = preprocessor.fit_transform(train_inputs)
    x_val = preprocessor.transform(val_inputs)
    model = build_model(spec, classes=classes, preprocessor=preprocessor)
    y_train = np.array([index[v] for v in train["label"].to_list()])
    y_val = np.array([index[v] for v in validation["label"].to_list()])
    started = time.perf_counter()
    try:
        fit = model.fit(x_train, y_train, x_val, y_val, log=log)
    except (MllifeError, ConfigError):
        raise
    except Exception as exc:  # an estimator's own error: name the candidate, keep the cause
        raise TrainingError(
            f"candidate {spec.name!r} failed to train: {type(exc).__name__}: {exc}"
        ) from exc
    ref = save_model(model, artifacts_dir=config.artifacts_dir)
    store.record_model(
        model_hash=ref.model_hash,
        name=spec.name,
        kind=spec.kind,
        spec=spec.model_dump(mode="json"),
        data_version=splits.data_version,
        split_version=splits.split_version,
        artifact_path=ref.relative_path,
        size_bytes=ref.size_bytes,
        fit_seconds=fit.seconds,
        run_id=run_id,
    )
    log(
        f"{spec.name}: saved {ref.relative_path} ({ref.size_bytes} bytes) in"
        f" {time.perf_counter() - started:.2f} s"
    )
    return TrainedCandidate(
        ref, fit.seconds, splits.data_version, splits.split_version, fit.history
    )
