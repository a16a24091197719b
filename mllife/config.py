"""Read and validate ``mllife.toml``, the project's one configuration file.

Relative paths in the file are relative to the folder that holds it (the project root).
Errors name the file and the offending key, and say what would be accepted.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mllife._errors import ConfigError
from mllife._ops_config import MonitoringConfig, ServingConfig, VersioningConfig
from mllife._policy_config import (  # noqa: F401  (part of this module's interface)
    LOWER_IS_BETTER,
    PER_CLASS_METRICS,
    POLICY_METRICS,
    RISK_DEFAULTS,
    PromotionConfig,
    parse_policy_metric,
)

__all__ = [
    "CONFIG_FILENAME",
    "CandidateConfig",
    "ColumnConfig",
    "DataConfig",
    "ProjectConfig",
    "PromotionConfig",
    "RangeConfig",
    "SearchConfig",
    "SplitConfig",
    "StoreConfig",
    "TrainingConfig",
    "find_config",
    "load_config",
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


class DataConfig(_Section):
    """Where the raw data lives and what it is."""

    #: "images": a folder with one subfolder per class; "table": a Parquet or CSV file
    kind: Literal["images", "table"] = "images"
    path: str = "data/digits"
    #: The classes the data may contain; inferred from the data when empty.
    classes: tuple[str, ...] = ()
    #: Images are resized to ``image_size`` x ``image_size`` grayscale before modelling.
    image_size: int = Field(default=8, ge=4, le=512)
    #: Largest image (width x height) that `mllife data add` accepts, read from its
    #: header before decoding (a decompression bomb is refused unopened).
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    #: Tables: the label column, and an optional stable row id (the split key).
    target: str = "target"
    id: str | None = None
    #: Tables: rows with a missing feature are dropped, or kept and imputed (median or
    #: most frequent value, learned on the train split).
    missing: Literal["drop", "impute"] = "impute"
    #: Tables: the feature contract. When empty it is inferred once from the data and
    #: frozen into ``schema_file`` (next to mllife.toml), which you may edit.
    columns: dict[str, ColumnConfig] = Field(default_factory=dict)
    schema_file: str = "mllife.schema.json"
    #: Optional: several annotators' labels for the same items (columns item, annotator,
    #: label), giving human-level accuracy as a ceiling for reports and the policy.
    annotations: str | None = None
    #: What `mllife data init` writes when ``path`` is missing (default: the digits for
    #: images, nothing for tables).
    default: Literal["digits", "breast_cancer", "none"] | None = None

    @property
    def default_data(self) -> str:
        if self.default is not None:
            return self.default
        return "digits" if self.kind == "images" else "none"

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


class CandidateConfig(_Section):
    """One candidate model: a scikit-learn estimator or a built-in torch architecture."""

    name: str
    kind: Literal["sklearn", "torch"]
    #: scikit-learn estimator import path, e.g. ``sklearn.linear_model.LogisticRegression``.
    estimator: str | None = None
    #: built-in torch architecture (``small_cnn``).
    architecture: str | None = None
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
        if self.kind == "torch" and not self.architecture:
            raise ValueError(f"candidate {self.name!r} of kind 'torch' needs 'architecture'")
        return self


class TrainingConfig(_Section):
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


class _File(_Section):
    #: asset owners shown in the Dagster UI, e.g. ["team:ml", "ada@example.com"]
    owners: tuple[str, ...] = ()
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    candidates: tuple[CandidateConfig, ...] = Field(min_length=1)
    promotion: PromotionConfig = PromotionConfig()
    training: TrainingConfig = TrainingConfig()
    problems: ProblemsConfig = ProblemsConfig()
    store: StoreConfig = StoreConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    versioning: VersioningConfig = VersioningConfig()

    @model_validator(mode="after")
    def _human_gate_needs_annotations(self) -> _File:
        if self.promotion.min_share_of_human is not None and self.data.annotations is None:
            raise ValueError(
                "promotion.min_share_of_human needs data.annotations (a file of"
                " several annotators' labels)"
            )
        return self

    @model_validator(mode="after")
    def _policy_classes_exist(self) -> _File:
        declared = set(self.data.classes)
        for name in self.promotion.thresholds:
            _, label = parse_policy_metric(name)
            if label is not None and declared and label not in declared:
                raise ValueError(
                    f"promotion.thresholds names class {label!r} ({name!r}), which is not"
                    f" among data.classes {sorted(declared)}"
                )
        return self

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, value: tuple[CandidateConfig, ...]) -> tuple[CandidateConfig, ...]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"candidate names must be unique; repeated: {dupes}")
        return value


class ProjectConfig:
    """A validated ``mllife.toml`` with its paths resolved against the project root."""

    def __init__(self, file: _File, *, path: Path) -> None:
        self._file = file
        self.path = path
        self.root = path.parent

    data = property(lambda self: self._file.data)
    split = property(lambda self: self._file.split)
    promotion = property(lambda self: self._file.promotion)
    owners = property(lambda self: list(self._file.owners))
    training = property(lambda self: self._file.training)
    serving = property(lambda self: self._file.serving)
    monitoring = property(lambda self: self._file.monitoring)
    versioning = property(lambda self: self._file.versioning)

    @property
    def candidates(self) -> tuple[CandidateConfig, ...]:
        """The configured candidates, then the baselines (each trained like a candidate)."""
        configured = self._file.candidates
        baselines = []
        for key in self._file.training.baselines:
            spec = BASELINES[key]
            duplicate = any(c.estimator == spec.estimator for c in configured)
            if not duplicate and all(c.name != spec.name for c in configured):
                baselines.append(spec)
        return (*configured, *baselines)

    @property
    def data_path(self) -> Path:
        return (self.root / self._file.data.path).resolve()

    @property
    def annotations_path(self) -> Path | None:
        path = self._file.data.annotations
        return None if path is None else (self.root / path).resolve()

    @property
    def schema_path(self) -> Path:
        return (self.root / self._file.data.schema_file).resolve()

    @property
    def problems_dir(self) -> Path:
        return (self.root / self._file.problems.folder).resolve()

    @property
    def store_path(self) -> Path:
        return (self.root / self._file.store.path).resolve()

    @property
    def state_dir(self) -> Path:
        """``.mllife/``: the store's folder, artifacts, reports and the Dagster home."""
        return self.root / ".mllife"

    @property
    def artifacts_dir(self) -> Path:
        """``artifacts/``: models and split manifests, DVC-tracked by ``artifacts.dvc``.

        Beside ``data/`` rather than in ``.mllife/``: DVC refuses a .dvc file inside a
        git-ignored folder, and ``artifacts.dvc`` is meant to be committed with the code.
        """
        return self.root / "artifacts"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def predictions_dir(self) -> Path:
        """Parquet segments of served predictions and feedback, before ingestion."""
        return self.state_dir / "predictions"

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster"

    def candidate(self, name: str) -> CandidateConfig:
        for candidate in self.candidates:
            if candidate.name == name:
                return candidate
        raise ConfigError(f"{self.path}: no candidate named {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return self._file.model_dump(mode="json")

    def __repr__(self) -> str:
        return f"ProjectConfig(path={str(self.path)!r})"


def find_config(start: Path | str | None = None) -> Path:
    """The nearest ``mllife.toml`` in ``start`` (default: the working directory) or above."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILENAME} in {here} or any folder above it; run mllife from a project"
        f" folder, or pass --config PATH"
    )


def load_config(path: Path | str | None = None) -> ProjectConfig:
    """Read and validate a project's ``mllife.toml``.

    Parameters
    ----------
    path : path-like, optional
        The file, or a folder holding it. Default: the nearest one from the working dir.

    Examples
    --------
    >>> config = load_config("mllife.toml")  # doctest: +SKIP
    >>> [c.name for c in config.candidates]  # doctest: +SKIP
    ['logreg', 'cnn']
    """
    if path is None:
        file_path = find_config()
    else:
        file_path = Path(path)
        if file_path.is_dir():
            file_path = file_path / CONFIG_FILENAME
    file_path = file_path.resolve()
    if not file_path.is_file():
        raise ConfigError(f"config file {file_path} does not exist; create it or pass its path")
    try:
        raw = tomllib.loads(file_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file_path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file_path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from exc
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file_path)) from None
    return ProjectConfig(parsed, path=file_path)


def _describe(exc: ValidationError, file_path: Path) -> str:
    lines = [f"{file_path}: {exc.error_count()} problem(s):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}': remove it or check its spelling")
        elif error["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        else:
            got = error.get("input")
            lines.append(f"  - key '{key}': {error['msg']} (got {got!r})")
    return "\n".join(lines)
