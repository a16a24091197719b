"""Data stage: raw_data -> clean_data -> splits, each with its contract checks."""

import dagster as dg
import polars as pl

from assets._metadata import column_schema, contract_check, frame_md
from assets.resources import MllifeProject
from mllife.contracts import check_contract, clean_image_schema, raw_image_schema
from mllife.data import CleanData, RawData, clean_images, infer_classes, scan_image_folder
from mllife.split import SplitSet, assign_splits, leaking_keys, split_version
from mllife.versioning import data_version


def _classes(project: MllifeProject) -> tuple[str, ...]:
    config = project.config
    return config.data.classes or infer_classes(config.data_path)


@dg.asset(
    group_name="data",
    kinds={"polars", "dvc"},
    description="Manifest of every image under the data folder: path, label (its class"
    " folder), sha256, size, decoded width/height/mode or the error that stopped decoding."
    " Its data version is DVC's hash of the folder.",
)
def raw_data(context: dg.AssetExecutionContext, project: MllifeProject) -> dg.Output[RawData]:
    config = project.config
    manifest = scan_image_folder(config.data_path, root=config.root)  # clear error if missing
    version = data_version(config.data_path, root=config.root)
    labels = manifest.group_by("label").len().sort("label")
    context.log.info(f"raw_data: {manifest.height} files, data version {version.md5}")
    return dg.Output(
        RawData(manifest, version.md5, str(config.data_path)),
        data_version=dg.DataVersion(version.md5),
        metadata={
            "data_version": version.md5,
            "dagster/row_count": manifest.height,
            "dagster/column_schema": column_schema(manifest),
            "unreadable_files": manifest.filter(pl.col("error").is_not_null()).height,
            "files_per_label": frame_md(labels),
            "data_path": dg.MetadataValue.path(str(config.data_path)),
        },
    )


@dg.asset_check(
    asset=raw_data,
    blocking=True,
    description="pandera contract of the raw"
    " manifest: unique paths, labels among the declared classes, sha256 hashes.",
)
def raw_data_contract(project: MllifeProject, raw_data: RawData) -> dg.AssetCheckResult:
    return contract_check(check_contract(raw_data.manifest, raw_image_schema(_classes(project))))


@dg.asset(
    group_name="data",
    kinds={"polars", "duckdb"},
    description="Rows fit for training: unreadable files, missing labels, conflicting"
    " labels and exact duplicates (by content hash) are dropped, each with its reason.",
)
def clean_data(project: MllifeProject, raw_data: RawData) -> dg.Output[CleanData]:
    rows, dropped = clean_images(raw_data.manifest)
    clean = CleanData(rows, dropped, raw_data.data_version)
    reasons = (
        dropped.with_columns(pl.col("reason").str.replace(r":.*| of .*", ""))
        .group_by("reason")
        .len()
        .sort("len", descending=True)
    )
    project.store.record_dataset(
        data_version=raw_data.data_version,
        source=raw_data.source,
        n_files=raw_data.manifest.height,
        n_rows=rows.height,
        n_dropped=dropped.height,
        n_classes=rows["label"].n_unique(),
    )
    return dg.Output(
        clean,
        data_version=dg.DataVersion(clean.content_version),
        metadata={
            "dagster/row_count": rows.height,
            "dagster/column_schema": column_schema(rows),
            "dropped": dropped.height,
            "dropped_by_reason": frame_md(reasons),
            "dropped_files": frame_md(dropped),
        },
    )


@dg.asset_check(
    asset=clean_data,
    blocking=True,
    description="pandera contract of the clean rows: readable, labelled, unique.",
)
def clean_data_contract(project: MllifeProject, clean_data: CleanData) -> dg.AssetCheckResult:
    return contract_check(check_contract(clean_data.rows, clean_image_schema(_classes(project))))


@dg.asset(
    group_name="data",
    kinds={"polars", "duckdb"},
    description="Train/validation/test assignment from a seeded hash of each row's content:"
    " a row keeps its split as data grows, and identical content never spans two splits.",
)
def splits(project: MllifeProject, clean_data: CleanData) -> dg.Output[SplitSet]:
    config = project.config
    assigned = assign_splits(clean_data.rows, config.split)
    split_set = SplitSet(assigned, clean_data.data_version, split_version(assigned))
    sizes = split_set.sizes()
    project.store.record_split(
        split_version=split_set.split_version,
        data_version=clean_data.data_version,
        seed=config.split.seed,
        sizes=sizes,
    )
    per_class = assigned.pivot(on="split", index="label", values="path", aggregate_function="len")
    return dg.Output(
        split_set,
        data_version=dg.DataVersion(split_set.split_version),
        metadata={
            "split_version": split_set.split_version,
            "sizes": dg.MetadataValue.json(sizes),
            "per_class": frame_md(per_class.sort("label")),
            "dagster/row_count": assigned.height,
        },
    )


@dg.asset_check(
    asset=splits, blocking=True, description="No content (by hash) appears in more than one split."
)
def no_leakage(splits: SplitSet) -> dg.AssetCheckResult:
    leaks = leaking_keys(splits.rows)
    return dg.AssetCheckResult(
        passed=not leaks, metadata={"leaking_hashes": len(leaks), "examples": leaks[:20]}
    )
