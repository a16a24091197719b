"""The data stages for either kind of source: read, check, clean, split.

Each function takes the project configuration and the previous stage's result, so the
asset graph (and scripts) call the same code for images and tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandera.polars as pa
import polars as pl

from mllife._errors import DataError
from mllife.config.project import ProjectConfig
from mllife.data.contract_file import (
    Contract,
    freeze_contract,
    load_contract,
    with_missing_values,
)
from mllife.data.contracts import (
    ContractResult,
    check_contract,
    clean_image_schema,
    raw_image_schema,
)
from mllife.data.derived import derived_features, table_with_derived
from mllife.data.images import (
    MANIFEST_SCHEMA,
    CleanData,
    RawData,
    clean_images,
    infer_classes,
    scan_image_folder,
)
from mllife.data.near_duplicates import near_duplicates_in
from mllife.data.split import (
    MIN_PER_CLASS,
    SplitSet,
    assign_splits,
    split_namespace,
    split_version,
)
from mllife.data.split_groups import grouping_key, split_groups
from mllife.data.stat_cache import StatCache, folder_fingerprint
from mllife.data.tables import as_declared, clean_table, read_table, table_manifest
from mllife.data.tables import table_schema as raw_table_schema
from mllife.storage.dvc import data_version, file_version, state_cache, versioned_folder
from mllife.storage.files import write_atomically

__all__ = [
    "ClassBalance",
    "class_balance",
    "clean",
    "clean_contract",
    "make_splits",
    "raw_contract",
    "current_data_version",
    "read_raw",
    "settle_contract",
]

#: the largest class may be at most this many times the smallest before a warning
MAX_IMBALANCE = 10.0


def read_raw(config: ProjectConfig) -> RawData:
    """The raw manifest and its data version (DVC's hash of the data)."""
    if config.data.kind == "images":
        return _read_images(config)
    table = read_table(config.data_path)
    derived = derived_features(config)
    if derived is not None:
        table, contract = table_with_derived(config, table, derived)
    else:
        contract = load_contract(table, config.data, config.schema_path)
    table = with_missing_values(table, contract.columns)
    manifest = table_manifest(table, config.data, source=str(config.data_path))
    return RawData(
        manifest,
        file_version(config.data_path),
        str(config.data_path),
        contract.columns,
        contract.origin,
        contract_frozen=contract.frozen,
        contract_findings=tuple(f.describe() for f in contract.findings),
    )


def _read_images(config: ProjectConfig) -> RawData:
    """An image folder's manifest and version, from the stat caches when nothing changed:
    one walk of the versioned folder compares every file's stat with the last scan's; if
    all match, the last manifest and version stand. Otherwise only the changed files are
    read (the manifest's stat cache and DVC's state database)."""
    manifest_cache = config.state_dir / "cache" / "raw-manifest.parquet"
    fingerprint, known = None, None
    if config.data_path.is_dir():
        fingerprint, known = _snapshot(config)
        if known is not None:
            manifest = StatCache(manifest_cache, MANIFEST_SCHEMA).frame()
            if manifest.height == known.get("rows"):
                return RawData(manifest, known["data_version"], str(config.data_path))
    manifest = scan_image_folder(  # a clear error if the folder is missing
        config.data_path,
        root=config.root,
        max_pixels=config.data.max_image_pixels,
        cache=manifest_cache,
    )
    version = data_version(config.data_path, root=config.root, state_dir=state_cache(config))
    record = {"fingerprint": fingerprint, "data_version": version.md5, "rows": manifest.height}
    write_atomically(_snapshot_path(config), json.dumps(record).encode())
    return RawData(manifest, version.md5, str(config.data_path))


def _snapshot_path(config: ProjectConfig) -> Path:
    return config.state_dir / "cache" / "raw-snapshot.json"


def _snapshot(config: ProjectConfig) -> tuple[str, dict | None]:
    """The image folder's fingerprint now, and the last scan's record if it matches."""
    folder = versioned_folder(config.data_path, root=config.root)
    salt = (str(config.data_path.resolve()), config.data.max_image_pixels)
    fingerprint = folder_fingerprint(folder, *salt)
    try:
        known = json.loads(_snapshot_path(config).read_text())
    except (FileNotFoundError, ValueError):
        return fingerprint, None
    return fingerprint, known if known.get("fingerprint") == fingerprint else None


def current_data_version(config: ProjectConfig) -> str | None:
    """The data version a run would record now (None when the data is missing): from
    the last scan's snapshot when no file changed since (one walk of stats), else DVC's
    hash with its state database (only changed files are read)."""
    if not config.data_path.exists():
        return None
    if config.data.kind == "table":
        return file_version(config.data_path)
    known = unchanged_image_version(config)
    if known is not None:
        return known
    return data_version(config.data_path, root=config.root, state_dir=state_cache(config)).md5


def unchanged_image_version(config: ProjectConfig) -> str | None:
    """The data version of the last scan when no file changed since (one walk of stats),
    else None (the new-data sensor's fast path)."""
    if not config.data_path.is_dir():
        return None
    _, known = _snapshot(config)
    return None if known is None else known["data_version"]


def settle_contract(config: ProjectConfig, raw: RawData) -> str | None:
    """After the raw contract passed: freeze an inferred contract into the schema file,
    unless the inference had doubts (those wait for ``mllife schema freeze``). Says what
    it did, or None for images and contracts already frozen."""
    if raw.columns is None or raw.contract_frozen:
        return None
    name = config.schema_path.name
    if raw.contract_findings:
        return f"contract inferred, not frozen into {name}: " + " | ".join(raw.contract_findings)
    freeze_contract(Contract(raw.columns, raw.contract_source, False), config.schema_path)
    return f"contract passed and was frozen into {name} (edit it to widen it)"


def classes_of(config: ProjectConfig, raw: RawData) -> tuple[str, ...]:
    if config.data.classes:
        return tuple(config.data.classes)
    if config.data.kind == "images":
        return infer_classes(config.data_path)
    return tuple(sorted(raw.manifest["label"].drop_nulls().unique().to_list()))


def raw_contract(config: ProjectConfig, raw: RawData) -> ContractResult:
    classes = classes_of(config, raw)
    if config.data.kind == "images":
        return check_contract(raw.manifest, raw_image_schema(classes))
    present = [c for c in config.data.forbidden if c in raw.manifest.columns]
    if present:  # before anything reads them: the run stops here, naming them
        return ContractResult(
            schema="raw_table",
            n_rows=raw.manifest.height,
            passed=False,
            counts={
                f"forbidden column '{c}' ([data] forbidden): remove it from the data": (
                    raw.manifest.height
                )
                for c in present
            },
        )
    original = as_declared(raw.manifest.drop("row", "label", "sha256"), raw.columns)
    schema = raw_table_schema(raw.columns, config.data, classes=classes)
    return check_contract(
        original, schema, locate=raw.manifest["row"], hidden=frozenset(config.data.pii)
    )


def clean(config: ProjectConfig, raw: RawData) -> CleanData:
    if config.data.kind == "images":
        rows, dropped = clean_images(raw.manifest)
    else:
        texts = [name for name, spec in raw.columns.items() if spec.dtype == "text"]
        rows, dropped = clean_table(raw.manifest, config.data, text_columns=texts)
    return CleanData(rows, dropped, raw.data_version, raw.columns, classes_of(config, raw))


def clean_contract(config: ProjectConfig, data: CleanData) -> ContractResult:
    classes = data.classes
    if config.data.kind == "images":
        result = check_contract(data.rows, clean_image_schema(classes))
    else:
        schema = pa.DataFrameSchema(
            {
                "label": pa.Column(pl.String, pa.Check.isin(list(classes))),
                "sha256": pa.Column(pl.String, unique=True),
                **({config.data.id: pa.Column(None, unique=True)} if config.data.id else {}),
            },
            strict=False,
            name="clean_table",
        )
        result = check_contract(data.rows, schema, locate=data.rows["row"])
    n_classes = data.rows["label"].n_unique() if data.rows.height else 0
    if n_classes < 2:
        counts = {**result.counts, "label: at least 2 classes": 1}
        problem = {
            "column": "label",
            "check": "at least 2 classes",
            "value": f"{n_classes} class(es) in {data.rows.height} clean rows",
        }
        return ContractResult(
            result.schema, result.n_rows, False, counts, [problem, *result.examples]
        )
    return result


@dataclass(frozen=True)
class ClassBalance:
    passed: bool
    ratio: float
    counts: dict[str, int]

    def describe(self) -> str:
        smallest = min(self.counts, key=self.counts.get)
        largest = max(self.counts, key=self.counts.get)
        return (
            f"largest class {largest!r} ({self.counts[largest]}) is {self.ratio:.1f}x the"
            f" smallest {smallest!r} ({self.counts[smallest]}); warning above"
            f" {MAX_IMBALANCE:g}x: collect more examples of the small classes"
        )


def class_balance(data: CleanData) -> ClassBalance:
    counts = dict(data.rows.group_by("label").len().sort("label").iter_rows())
    ratio = max(counts.values()) / max(min(counts.values()), 1) if counts else float("inf")
    return ClassBalance(ratio <= MAX_IMBALANCE, float(ratio), counts)


def _check_every_class_is_evaluated(assigned: pl.DataFrame) -> None:
    """Each class has rows in validation and in test, or the models cannot be compared
    or judged on it: a ``DataError`` naming the classes, their counts and what is needed."""
    counts = assigned.group_by("label").agg(
        pl.len().alias("rows"),
        *[(pl.col("split") == s).sum().alias(s) for s in ("validation", "test")],
    )
    short = counts.filter((pl.col("validation") == 0) | (pl.col("test") == 0)).sort("label")
    if short.height:
        shown = ", ".join(
            f"{r['label']!r} ({r['rows']} rows: {r['validation']} validation, {r['test']} test)"
            for r in short.head(5).iter_rows(named=True)
        )
        raise DataError(
            f"the 80/10/10 split leaves class(es) without validation or test rows: {shown}."
            f" Each class needs about {MIN_PER_CLASS} rows or more so that validation and"
            " test each hold one; add rows of these classes (or leave the class out)"
        )


def make_splits(config: ProjectConfig, data: CleanData, *, store) -> tuple[SplitSet, int]:
    """Assign splits (rows seen before keep theirs) and remember the new assignments."""
    key = config.data.id if config.data.kind == "table" and config.data.id else "sha256"
    namespace = split_namespace(config.split)
    previous = store.split_assignments(namespace)
    groups = split_groups(config, data.rows)
    assigned = assign_splits(data.rows, config.split, key=key, previous=previous, groups=groups)
    try:
        _check_every_class_is_evaluated(assigned)  # before anything is recorded
    except DataError as exc:
        if groups is None:
            raise
        raise DataError(
            f"{exc}. With [split] {grouping_key(config.split)}"
            f" whole groups go to one split: {groups.n_unique()} groups are too few for"
            " every class to reach validation and test; use more, smaller groups"
        ) from None
    new = store.record_split_assignments(
        namespace, assigned.select(pl.col(key).cast(pl.String).alias("key"), "label", "split")
    )
    near = None
    if config.split.near_duplicate_distance > 0:
        near = near_duplicates_in(config, assigned, data.columns)
    result = SplitSet(
        assigned, data.data_version, split_version(assigned, key=key), key, data.columns, near
    )
    return result, new
