"""The sections of ``mllife.toml`` that describe the project: data, split, candidates
(with their search), training, problems and store. Each is a strict pydantic model:
an unknown key or a wrong type is an error naming it."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BASELINES",
    "AugmentConfig",
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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnConfig(_Section):
    """The contract of one table column."""

    dtype: Literal["float", "int", "bool", "string", "category", "text"]
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    #: allowed values of a category column
    categories: tuple[str, ...] | None = None
    #: text that means "missing" in a number column of a CSV (e.g. "n/a"): read as null
    missing_values: tuple[str, ...] = ()
    #: made by ``[features] derive`` from the other columns: clients never send it
    derived: bool = False


class DataConfig(_Section):
    """Where the raw data lives and what it is."""

    #: "images": a folder with one subfolder per class; "table": a Parquet or CSV file
    kind: Literal["images", "table"] = "images"
    path: str = "data/digits"
    #: The classes the data may contain; inferred from the data when empty.
    classes: tuple[str, ...] = ()
    #: Images become ``image_size`` x ``image_size`` squares (see ``resize``) before modelling.
    image_size: int = Field(default=8, ge=4, le=512)
    #: Colour channels the models see: 3 (colour), 1 (grayscale), or "auto": 3 when any
    #: image is in colour. Carried inside each model's preprocessing.
    channels: Literal["auto", 1, 3] = "auto"
    #: How images become image_size squares: "crop" (shorter side to size, centre crop),
    #: "pad" (longer side to size, black borders) or "squash" (distorts).
    resize: Literal["crop", "pad", "squash"] = "crop"
    #: Largest image (width x height) that `mllife data add` accepts, read from its
    #: header before decoding (a decompression bomb is refused unopened).
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    #: Tables: the label column, and an optional stable row id (the split key).
    target: str = "target"
    id: str | None = None
    #: Tables: columns that must never be in the training data (a national id, a raw
    #: postcode...): their presence fails the blocking raw-data contract, naming them
    forbidden: tuple[str, ...] = ()
    #: Tables: personal columns (an email, a birth date): the model may use them, but
    #: served predictions log their values as keyed hashes (pii_logging = "hash": equal
    #: values stay equal, nothing can be read back) or not at all ("drop"); the store and
    #: the reports never hold them in clear
    pii: tuple[str, ...] = ()
    pii_logging: Literal["hash", "drop"] = "hash"
    #: When each row happened: a table column (a date, datetime or number of days; kept
    #: out of the model's inputs) or, for images, "file_date" (the EXIF date taken, else
    #: the file's modification time). The staleness backtest trains on the past and
    #: scores later windows, measuring how fast a model ages
    time: str | None = None
    #: Tables: columns kept beside the rows for measurement only (a fairness group such
    #: as sex or age band, perhaps also pii): never model inputs, never asked of clients
    measure_only: tuple[str, ...] = ()
    #: Tables: rows with a missing feature are dropped, or kept and imputed (median or
    #: most frequent value, learned on the train split).
    missing: Literal["drop", "impute"] = "impute"
    #: Tables: the feature contract. When empty it is inferred from the data and frozen
    #: into ``schema_file`` (next to mllife.toml, yours to edit) after the first run whose
    #: contract passes, or by ``mllife schema freeze``.
    columns: dict[str, ColumnConfig] = Field(default_factory=dict)
    schema_file: str = "mllife.schema.json"
    #: Optional: several annotators' labels for the same items (columns item, annotator,
    #: label), giving human-level accuracy as a ceiling for reports and the policy.
    annotations: str | None = None
    #: What `mllife data init` writes when ``path`` is missing (default: the digits for
    #: images, nothing for tables).
    default: Literal["digits", "colour_photos", "breast_cancer", "none"] | None = None

    @property
    def default_data(self) -> str:
        if self.default is not None:
            return self.default
        return "digits" if self.kind == "images" else "none"

    @model_validator(mode="after")
    def _tagged_columns(self) -> DataConfig:
        if self.time and self.kind == "images" and self.time != "file_date":
            raise ValueError('data.time for images is "file_date" (EXIF date taken, else mtime)')
        if self.time and self.time in (self.target, self.id):
            raise ValueError(f"data.time {self.time!r} is the target or the id column")
        for tag in ("forbidden", "pii", "measure_only"):
            if getattr(self, tag) and self.kind != "table":
                raise ValueError(f"data.{tag} names table columns")
            if self.target in getattr(self, tag):
                raise ValueError(f"data.{tag} names the target column {self.target!r}")
        if both := sorted(set(self.forbidden) & set(self.pii)):
            raise ValueError(f"data: {both} both forbidden and pii: a column is one or the other")
        return self

    @model_validator(mode="after")
    def _table_file_type(self) -> DataConfig:
        if self.kind == "table" and not self.path.lower().endswith((".parquet", ".csv")):
            raise ValueError(f"a table must be a .parquet or .csv file, got path {self.path!r}")
        if self.kind == "images" and self.default == "breast_cancer":
            raise ValueError("default 'breast_cancer' is a table: set kind = 'table'")
        if self.kind == "table" and self.default == "digits":
            raise ValueError("default 'digits' is an image folder: set kind = 'images'")
        return self


class SplitConfig(_Section):
    """Train/validation/test ratios and the seed of the hash-based assignment."""

    train: float = Field(default=0.8, gt=0, lt=1)
    validation: float = Field(default=0.1, gt=0, lt=1)
    test: float = Field(default=0.1, gt=0, lt=1)
    seed: int = 0
    #: keep each group in one split: a table column (a patient, a customer, a camera) whose
    #: rows all go to the same split...
    group: str | None = None
    #: ...or, for images, a regular expression whose first group, searched in each
    #: file's path as the manifest lists it (``data/photos/cat/cam3_0001.jpg``), names
    #: its group (``"/(\\w+)_\\d+\\.jpg$"`` -> "cam3"). A group's split follows from
    #: its name and the seed alone: stable as data grows, no group ever in two splits.
    group_pattern: str | None = None
    #: ...or, for images, a CSV file (relative to mllife.toml) with columns ``path``
    #: (as the manifest lists it, or relative to the data folder) and ``group``
    group_manifest: str | None = None
    #: near-duplicates in two splits fail the blocking no_leakage check, naming both:
    #: images whose 16x16 grayscale thumbnails differ by at most this mean absolute
    #: difference (0-1; a resized, re-encoded copy is ~0.01 apart, two different digits
    #: 0.025 or more), found through perceptual hashes; 0 turns the search off (images
    #: and tables)
    near_duplicate_distance: float = Field(default=0.016, ge=0, lt=1)
    #: tables: rows equal once text is case- and space-folded and numbers are rounded to
    #: this many significant digits are near-duplicates
    near_duplicate_digits: int = Field(default=4, ge=1, le=15)

    @field_validator("group_pattern")
    @classmethod
    def _one_capture_group(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            groups = re.compile(value).groups
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        if groups < 1:
            raise ValueError(f"{value!r} has no capture group: put the group's name in (...)")
        return value

    @model_validator(mode="after")
    def _ratios_sum_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(
                f"train + validation + test must be 1, got {self.train} + {self.validation}"
                f" + {self.test} = {total:g}"
            )
        return self


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
    kind: Literal["sklearn", "torch", "embedding"]
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


class CleaningConfig(_Section):
    """The search for suspected label errors, and what cleaning may drop beyond
    unreadable, unlabelled and duplicate inputs."""

    #: search the training split for suspected label errors every run (the label_issues
    #: asset and the report's data section): out-of-fold fits cost a few seconds a run
    label_issues: bool = False
    #: drop the rows confident learning suspects of a wrong label (searched over all
    #: clean rows, out of fold), each with its reason like any other cleaning drop
    drop_label_issues: bool = False


class StoreConfig(_Section):
    path: str = ".mllife/store.duckdb"


class FeaturesConfig(_Section):
    """Derived features (tables): a function of yours that adds columns computed from
    the raw ones; its source travels inside each model, so serving computes the same."""

    #: "module:function", the module importable from the project folder ("features:add"
    #: for features.py beside mllife.toml): called with the raw feature columns (a polars
    #: DataFrame, never the target), it returns the new columns (same height)
    derive: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class FairnessConfig(_Section):
    """Quality per group of people: the report shows, for each column named, accuracy
    and recall per class for every value, and the largest gap between two groups with
    its interval (tables; the columns stay what the model sees)."""

    groups: tuple[str, ...] = ()
