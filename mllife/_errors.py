"""The exceptions mllife raises, all in one place.

Every error says what was wrong, where (file, key, row) and what to do about it.

    MllifeError
    ├── ConfigError          mllife.toml is missing, malformed or inconsistent
    ├── DataError            the data folder or a data file is unusable
    ├── TrainingError        a candidate could not be trained
    ├── ArtifactError        a model artifact is missing, corrupt or untrusted
    ├── StoreError           the DuckDB metrics store cannot be used
    │   ├── StoreLockedError another process holds the store's write lock
    │   └── ChampionChangedError another process switched the champion meanwhile
    ├── VersioningError      DVC failed or its lock could not be taken
    ├── PromotionError       a promotion or rollback was refused
    ├── ProblemError         a known problem or pattern cannot be added or removed
    │   └── ReviewError      a review desk action refused (its HTTP status attached)
    ├── ServingError         the server cannot start or serve (no champion, bad key)
    └── ServiceError         a team service (PostgreSQL) cannot be reached
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ChampionChangedError",
    "ConfigError",
    "DataError",
    "MllifeError",
    "ProblemError",
    "PromotionError",
    "ReviewError",
    "ServiceError",
    "ServingError",
    "StoreError",
    "StoreLockedError",
    "TrainingError",
    "VersioningError",
]


class MllifeError(Exception):
    """Base class of every error mllife raises on purpose."""


class ConfigError(MllifeError, ValueError):
    """The project configuration is missing, malformed or inconsistent."""


class DataError(MllifeError, ValueError):
    """The data folder or a data file cannot be used."""


class TrainingError(MllifeError, RuntimeError):
    """A candidate model could not be trained."""


class ArtifactError(MllifeError, RuntimeError):
    """A model artifact is missing, corrupt, or not trusted by the store."""


class StoreError(MllifeError, RuntimeError):
    """The metrics store cannot be opened or written."""


class StoreLockedError(StoreError):
    """Another process held the store's write lock for longer than the timeout."""


class ChampionChangedError(StoreError):
    """The champion changed between a decision and its recording (compare-and-swap)."""

    def __init__(self, message: str, *, current_hash: str | None) -> None:
        super().__init__(message)
        self.current_hash = current_hash


class VersioningError(MllifeError, RuntimeError):
    """A DVC command failed, or DVC's lock could not be taken in time."""


class PromotionError(MllifeError, RuntimeError):
    """A promotion or rollback was refused; the champion is unchanged."""


class ProblemError(MllifeError, ValueError):
    """A known problem or pattern cannot be added, found or removed."""


class ReviewError(ProblemError):
    """A review desk action that cannot be taken: no such prediction (404), one the
    reviewer may not see (403), an input that was not kept (409), a bad label (422)."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class ServingError(MllifeError, RuntimeError):
    """The model server cannot start or serve, or an API key cannot be managed."""


class ServiceError(MllifeError, RuntimeError):
    """A service of the team profile cannot be reached or used; names the setting."""
