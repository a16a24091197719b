"""The sections of ``mllife.toml`` about the data: where it is and what it holds (with
the table contract and the tagged columns), how it is split, what cleaning may drop, and
the features derived from it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from mllife.config.base import _Section

__all__ = ["CleaningConfig", "ColumnConfig", "DataConfig", "FeaturesConfig", "SplitConfig"]


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
    #: Tables: the longest text a text column may hold, in characters. Longer training
    #: rows are dropped (with the reason); a longer served text is refused with 413.
    max_text_chars: int = Field(default=100_000, ge=1)
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
        if self.kind == "table" and not self.path.lower().endswith(
            (".parquet", ".csv", ".jsonl", ".ndjson")
        ):
            raise ValueError(
                f"a table must be a .parquet, .csv or .jsonl file, got path {self.path!r}"
            )
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


class CleaningConfig(_Section):
    """The search for suspected label errors, and what cleaning may drop beyond
    unreadable, unlabelled and duplicate inputs."""

    #: search the training split for suspected label errors every run (the label_issues
    #: asset and the report's data section): out-of-fold fits cost a few seconds a run
    label_issues: bool = False
    #: drop the rows confident learning suspects of a wrong label (searched over all
    #: clean rows, out of fold), each with its reason like any other cleaning drop
    drop_label_issues: bool = False


class FeaturesConfig(_Section):
    """Derived features (tables): a function of yours that adds columns computed from
    the raw ones; its source travels inside each model, so serving computes the same."""

    #: "module:function", the module importable from the project folder ("features:add"
    #: for features.py beside mllife.toml): called with the raw feature columns (a polars
    #: DataFrame, never the target), it returns the new columns (same height)
    derive: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
