"""The sections of ``mllife.toml`` that describe the project: candidates (with their
search), training, problems, store and fairness; the data sections live in
``data_sections`` and are re-exported here. Each is a strict pydantic model: an unknown
key or a wrong type is an error naming it."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mllife.config.base import _Section
from mllife.config.data_sections import (
    CleaningConfig,
    ColumnConfig,
    DataConfig,
    FeaturesConfig,
    SplitConfig,
)

__all__ = [
    "BASELINES",
    "AugmentConfig",
    "CleaningConfig",
    "FeaturesConfig",
    "CandidateConfig",
    "ColumnConfig",
    "DataConfig",
    "ProblemsConfig",
    "RangeConfig",
    "SearchConfig",
    "SplitConfig",
    "StoreConfig",
    "TrainingConfig",
]

CONFIG_FILENAME = "mllife.toml"
SELECTION_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class RangeConfig(_Section):
    """A numeric range for random search: uniform, or log-uniform with ``log = true``."""

    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> RangeConfig:
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={self.low} high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self


class SearchConfig(_Section):
    """Hyperparameter search on the validation split (never the test split)."""

    method: Literal["grid", "random"] = "grid"
    #: parameter -> list of values (grid or random choice) or a {low, high, log} range
    space: dict[str, list[Any] | RangeConfig] = Field(default_factory=dict)
    #: number of random trials (random search only)
    trials: int = Field(default=10, ge=1, le=1000)
    seed: int = 0
    metric: Literal["accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"] = "macro_f1"
    #: k-fold cross-validation on the train split for scikit-learn candidates (0 = off)
    cv: int = Field(default=0, ge=0, le=20)

    @model_validator(mode="after")
    def _space_fits_method(self) -> SearchConfig:
        for name, values in self.space.items():
            if isinstance(values, list) and not values:
                raise ValueError(f"search space {name!r} is an empty list")
            if self.method == "grid" and isinstance(values, RangeConfig):
                raise ValueError(
                    f"search space {name!r} is a range: grid search needs a list of values"
                    " (or use method = 'random')"
                )
        return self


class AugmentConfig(_Section):
    """Random changes to training images (torchvision transforms v2), never to the
    validation, test or served ones. The colour jitter is the articles' countermeasure
    to a model that learned a colour mood or a photo filter."""

    #: random resized crop keeping at least this share of the image (0 = off)
    crop: float = Field(0.0, ge=0.0, lt=1.0)
    hflip: bool = False
    vflip: bool = False
    #: random rotation up to this many degrees either way
    rotation: float = Field(0.0, ge=0.0, le=180.0)
    #: brightness, contrast and saturation jitter of this strength (hue: half of it)
    color_jitter: float = Field(0.0, ge=0.0, le=1.0)


class CandidateConfig(_Section):
    """One candidate model: a scikit-learn estimator, a torch network (built in, any
    torchvision classification architecture, or the user's own ``nn.Module``), or a
    frozen pretrained backbone's embeddings with a scikit-learn classifier on top."""

    name: str
    kind: Literal["sklearn", "torch", "embedding", "text_encoder"]
    #: scikit-learn estimator import path, e.g. ``sklearn.linear_model.LogisticRegression``
    #: (for ``embedding``: the classifier on the embeddings, default LogisticRegression).
    estimator: str | None = None
    #: torch: a built-in (``small_cnn``, ``mlp``, ``resnet18``) or any torchvision
    #: classification architecture (``resnet50``, ``efficientnet_b0``, ``vit_b_16``...);
    #: ``timm:<name>`` for timm; ``embedding``: the backbone.
    architecture: str | None = None
    #: pretrained weights: a local file (relative to mllife.toml), or a torchvision weights
    #: name (``DEFAULT``, ``IMAGENET1K_V1``) found in the torch hub cache; never downloaded
    weights: str | None = None
    #: how the weights file's tensor names map onto the architecture's: "names" (the
    #: same names), "order" (the same tensors in the same order, every shape checked:
    #: weights from another implementation of the network), or a table of name prefixes
    #: (``{ "encoder." = "features." }``)
    weights_map: Literal["names", "order"] | dict[str, str] = "names"
    #: the input normalisation (per channel) the weights expect, instead of what their
    #: architecture's pretrained configuration says
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    #: the user's own ``nn.Module`` class by import path (torch), built with
    #: ``num_classes=`` and the candidate's architecture params
    module: str | None = None
    augment: AugmentConfig | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    search: SearchConfig | None = None
    #: set by mllife for the always-trained baselines, not in mllife.toml
    baseline: bool = Field(default=False, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"candidate name {value!r} must be lowercase letters, digits and '_',"
                " starting with a letter (it becomes the asset name candidate_<name>)"
            )
        return value

    @model_validator(mode="after")
    def _kind_has_its_target(self) -> CandidateConfig:
        if self.kind == "sklearn" and not self.estimator:
            raise ValueError(f"candidate {self.name!r} of kind 'sklearn' needs 'estimator'")
        if self.kind == "torch" and not (self.architecture or self.module):
            raise ValueError(
                f"candidate {self.name!r} of kind 'torch' needs 'architecture' or 'module'"
            )
        if self.kind == "embedding" and not (self.architecture and self.weights):
            raise ValueError(
                f"candidate {self.name!r} of kind 'embedding' needs 'architecture' (the"
                " backbone, e.g. resnet18) and 'weights' (a local file or a torchvision"
                " weights name in the torch hub cache)"
            )
        if self.kind == "text_encoder" and not self.weights:
            raise ValueError(
                f"candidate {self.name!r} of kind 'text_encoder' needs 'weights': a"
                " sentence-transformers folder (config.json, model.safetensors,"
                " tokenizer.json), relative to mllife.toml"
            )
        if not self.weights and (self.weights_map != "names" or self.mean or self.std):
            raise ValueError(
                f"candidate {self.name!r}: 'weights_map', 'mean' and 'std' describe pretrained"
                " weights; set 'weights' too"
            )
        if (self.mean is None) != (self.std is None):
            raise ValueError(f"candidate {self.name!r}: give both 'mean' and 'std', or neither")
        if self.std is not None and (
            len(self.mean) != len(self.std) or len(self.std) not in (1, 3) or min(self.std) <= 0
        ):
            raise ValueError(
                f"candidate {self.name!r}: 'mean' {list(self.mean)} and 'std' {list(self.std)}"
                " need 1 or 3 values each (per channel), every std above 0"
            )
        if self.augment is not None and self.kind != "torch":
            raise ValueError(f"candidate {self.name!r}: 'augment' applies to torch candidates")
        return self


class TrainingConfig(_Section):
    #: where torch trains, evaluates and serves: "auto" (CUDA when present), "cpu",
    #: "cuda" or "cuda:<n>"
    device: str = "auto"
    #: image batches are decoded by this many DataLoader worker processes ("auto": one
    #: per core beyond the first two, at most 8)
    loader_workers: int | Literal["auto"] = "auto"
    #: a split whose decoded pixels fit in this many MB is held in memory while a model
    #: trains on it (no per-image cache read each epoch); larger ones are streamed
    pixel_memory_mb: int = Field(128, ge=0)
    #: simple baselines trained beside the candidates, so a simpler model that does as
    #: well is visible: "majority" (most frequent class), "logreg" (logistic regression,
    #: skipped when a candidate already uses LogisticRegression)
    baselines: tuple[Literal["majority", "logreg"], ...] = ("majority", "logreg")


BASELINES = {
    "majority": CandidateConfig(
        name="baseline_majority",
        kind="sklearn",
        estimator="sklearn.dummy.DummyClassifier",
        params={"strategy": "most_frequent"},
        baseline=True,
    ),
    "logreg": CandidateConfig(
        name="baseline_logreg",
        kind="sklearn",
        estimator="sklearn.linear_model.LogisticRegression",
        params={"max_iter": 1000},
        baseline=True,
    ),
}


class ProblemsConfig(_Section):
    #: folder of known problems kept in the repository: <folder>/<name>/problem.toml
    folder: str = "problems"


class StoreConfig(_Section):
    path: str = ".mllife/store.duckdb"


class FairnessConfig(_Section):
    """Quality per group of people: the report shows, for each column named, accuracy
    and recall per class for every value, and the largest gap between two groups with
    its interval (tables; the columns stay what the model sees)."""

    groups: tuple[str, ...] = ()
