"""Read and validate ``mllife.toml``, the project's one configuration file.

Relative paths in the file are relative to the folder that holds it (the project root).
Errors name the file and the offending key, and say what would be accepted.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from mllife._errors import ConfigError
from mllife.config.messages import describe_validation_error
from mllife.config.ops import (
    AlertsConfig,
    MonitoringConfig,
    ReviewConfig,
    ServingConfig,
    TeamConfig,
    VersioningConfig,
)
from mllife.config.policy import (  # noqa: F401  (part of this module's interface)
    LOWER_IS_BETTER,
    PER_CLASS_METRICS,
    POLICY_METRICS,
    RISK_DEFAULTS,
    PromotionConfig,
    parse_policy_metric,
)
from mllife.config.sections import (  # noqa: F401  (part of this module's interface)
    BASELINES,
    CONFIG_FILENAME,
    SELECTION_METRICS,
    CandidateConfig,
    CleaningConfig,
    ColumnConfig,
    DataConfig,
    FairnessConfig,
    FeaturesConfig,
    ProblemsConfig,
    RangeConfig,
    SearchConfig,
    SplitConfig,
    StoreConfig,
    TrainingConfig,
    _Section,
)

#: the profile a process runs in (set by ``mllife run --profile``, ``mllife worker``)
PROFILE_VARIABLE = "MLLIFE_PROFILE"

__all__ = [
    "CONFIG_FILENAME",
    "PROFILE_VARIABLE",
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


class _File(_Section):
    #: asset owners shown in the Dagster UI, e.g. ["team:ml", "ada@example.com"]
    owners: tuple[str, ...] = ()
    data: DataConfig = DataConfig()
    split: SplitConfig = SplitConfig()
    cleaning: CleaningConfig = CleaningConfig()
    features: FeaturesConfig = FeaturesConfig()
    candidates: tuple[CandidateConfig, ...] = Field(min_length=1)
    promotion: PromotionConfig = PromotionConfig()
    training: TrainingConfig = TrainingConfig()
    problems: ProblemsConfig = ProblemsConfig()
    store: StoreConfig = StoreConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    review: ReviewConfig = ReviewConfig()
    alerts: AlertsConfig = AlertsConfig()
    fairness: FairnessConfig = FairnessConfig()
    versioning: VersioningConfig = VersioningConfig()
    team: TeamConfig = TeamConfig()

    @model_validator(mode="after")
    def _human_gate_needs_annotations(self) -> _File:
        if self.promotion.min_share_of_human is not None and self.data.annotations is None:
            raise ValueError(
                "promotion.min_share_of_human needs data.annotations (a file of"
                " several annotators' labels)"
            )
        return self

    @model_validator(mode="after")
    def _group_fits_the_data(self) -> _File:
        split, kind = self.split, self.data.kind
        if sum(map(bool, (split.group, split.group_pattern, split.group_manifest))) > 1:
            raise ValueError("split: give one of 'group', 'group_pattern', 'group_manifest'")
        if split.group and kind != "table":
            raise ValueError("split.group names a table column; for images use split.group_pattern")
        if (split.group_pattern or split.group_manifest) and kind != "images":
            raise ValueError(
                "split.group_pattern/group_manifest name images; for tables use split.group"
            )
        if self.features.derive and kind != "table":
            raise ValueError("features.derive adds table columns: for tables only")
        if self.fairness.groups and kind != "table":
            raise ValueError("fairness.groups names table columns")
        if self.data.target in self.fairness.groups:
            raise ValueError(f"fairness.groups names the target column {self.data.target!r}")
        if split.group and split.group == self.data.target:
            raise ValueError(f"split.group {split.group!r} is the target column")
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

    def __init__(self, file: _File, *, path: Path, profile: str = "local") -> None:
        self._file = file
        self.path = path
        self.root = path.parent
        #: "local", or "team" (``MLLIFE_PROFILE``): with ``[team] storage``, what every
        #: worker must see -- the store, artifacts, step outputs -- lives there
        self.profile = profile

    data = property(lambda self: self._file.data)
    split = property(lambda self: self._file.split)
    cleaning = property(lambda self: self._file.cleaning)
    features = property(lambda self: self._file.features)
    promotion = property(lambda self: self._file.promotion)
    owners = property(lambda self: list(self._file.owners))
    training = property(lambda self: self._file.training)
    serving = property(lambda self: self._file.serving)
    monitoring = property(lambda self: self._file.monitoring)
    review = property(lambda self: self._file.review)
    alerts = property(lambda self: self._file.alerts)
    fairness = property(lambda self: self._file.fairness)
    versioning = property(lambda self: self._file.versioning)
    team = property(lambda self: self._file.team)

    @property
    def configured_candidates(self) -> tuple[CandidateConfig, ...]:
        """The ``[[candidates]]`` of mllife.toml, as written."""
        return self._file.candidates

    @property
    def baselines(self) -> tuple[CandidateConfig, ...]:
        """The ``[training] baselines`` not already among the configured candidates."""
        configured = self._file.candidates
        baselines = []
        for key in self._file.training.baselines:
            spec = BASELINES[key]
            duplicate = any(c.estimator == spec.estimator for c in configured)
            if not duplicate and all(c.name != spec.name for c in configured):
                baselines.append(spec)
        return tuple(baselines)

    @property
    def models_to_train(self) -> tuple[CandidateConfig, ...]:
        """The configured candidates, then the baselines: every model a run trains,
        evaluates and may choose as the challenger."""
        return (*self.configured_candidates, *self.baselines)

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
    def team_storage(self) -> Path | None:
        """The team's shared storage, when the team profile uses one."""
        storage = self._file.team.storage
        if self.profile != "team" or storage is None:
            return None
        return (self.root / storage).resolve()

    @property
    def shared_dir(self) -> Path:
        """Where state that every worker must see lives: ``[team] storage`` in the team
        profile, else ``.mllife/``."""
        return self.team_storage or self.state_dir

    @property
    def store_path(self) -> Path:
        if self.team_storage is not None:
            return self.team_storage / "store.duckdb"
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
        On team storage, ``<storage>/artifacts`` (content-addressed, not DVC-tracked).
        """
        if self.team_storage is not None:
            return self.team_storage / "artifacts"
        return self.root / "artifacts"

    @property
    def steps_dir(self) -> Path:
        """Step outputs (the IO manager's folder, a folder per run)."""
        if self.team_storage is not None:
            return self.team_storage / "steps"
        return self.dagster_home / "storage"

    @property
    def steps_url(self) -> str:
        """Step outputs as a folder or fsspec URL: ``[team] step_outputs`` in the team
        profile when set (object storage), else :attr:`steps_dir`."""
        outputs = self._file.team.step_outputs
        if self.profile != "team" or outputs is None:
            return str(self.steps_dir)
        return outputs if "://" in outputs else str((self.root / outputs).resolve())

    @property
    def reports_dir(self) -> Path:
        return self.shared_dir / "reports"

    @property
    def predictions_dir(self) -> Path:
        """Parquet segments of served predictions and feedback, before ingestion."""
        return self.state_dir / "predictions"

    @property
    def served_inputs_dir(self) -> Path:
        """Served images kept for the review desk, named by their SHA-256."""
        return self.state_dir / "served_inputs"

    @property
    def dagster_home(self) -> Path:
        return self.state_dir / "dagster"

    def candidate(self, name: str) -> CandidateConfig:
        for candidate in self.models_to_train:
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
        f" folder, pass --config PATH, or create a project for your data: `mllife init"
        f" --images FOLDER` or `mllife init --table FILE --target COLUMN`"
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
    >>> [c.name for c in config.models_to_train]  # doctest: +SKIP
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
        raise ConfigError(describe_validation_error(exc, file_path)) from None
    profile = os.environ.get(PROFILE_VARIABLE, "local")
    if profile not in ("local", "team"):
        raise ConfigError(f"{PROFILE_VARIABLE}={profile!r}: expected local or team")
    return ProjectConfig(parsed, path=file_path, profile=profile)
