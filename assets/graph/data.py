"""Data stage: raw_data -> clean_data -> splits, each with its contract checks."""

import dagster as dg
import polars as pl

from assets.graph import pools
from assets.graph._metadata import column_schema, contract_check, frame_table, versioned_output
from assets.graph.resources import MllifeProject
from mllife.data.class_set import class_set_change
from mllife.data.images import CleanData, RawData
from mllife.data.split import SplitSet, leaking_keys, save_split_manifest
from mllife.data.stage import (
    class_balance,
    clean,
    clean_contract,
    make_splits,
    raw_contract,
    read_raw,
    settle_contract,
)
from mllife.data.text_cleaning import markup_note
from mllife.evaluation.label_issues import (
    LabelIssues,
    drop_label_issues,
    training_label_issues,
)


@dg.asset(
    pool=pools.STORE,
    group_name="data",
    kinds={"polars", "dvc"},
    description="The raw data as a manifest: for images every file (path, label from its"
    " class folder, sha256, size, decoded width/height/mode or the error that stopped"
    " decoding); for tables every row (with its row number, label and a hash of its"
    " features). Its data version is DVC's hash of the data.",
)
def raw_data(context: dg.AssetExecutionContext, project: MllifeProject) -> dg.Output[RawData]:
    config = project.config
    raw = read_raw(config)
    manifest = raw.manifest
    context.log.info(f"raw_data: {manifest.height} rows, data version {raw.data_version}")
    metadata = {
        "data_version": raw.data_version,
        "dagster/row_count": manifest.height,
        "dagster/column_schema": column_schema(manifest),
        "rows_per_label": frame_table(manifest.group_by("label").len().sort("label")),
        "data_path": dg.MetadataValue.path(str(config.data_path)),
    }
    if "error" in manifest.columns:
        metadata["unreadable_files"] = manifest.filter(pl.col("error").is_not_null()).height
    if raw.columns is not None:
        metadata["contract"] = raw.contract_source
        for finding in raw.contract_findings:
            context.log.warning(finding)
    return versioned_output(raw, raw.data_version, metadata=metadata)


@dg.asset_check(
    asset=raw_data,
    blocking=True,
    description="pandera contract of the raw"
    " data: images (unique paths, declared classes, hashes) or table columns"
    " (names, dtypes, ranges, nullability, categories; no missing or extra"
    " column).",
)
def raw_data_contract(project: MllifeProject, raw_data: RawData) -> dg.AssetCheckResult:
    return contract_check(raw_contract(project.config, raw_data))


@dg.asset(
    pool=pools.STORE,  # records the dataset in the store: one writer at a time
    group_name="data",
    kinds={"polars", "duckdb"},
    description="Rows fit for training. Dropped, each with its reason: unreadable files,"
    " missing labels, missing feature values (with missing = 'drop'), conflicting labels"
    " for identical content, exact duplicates, and (with [cleaning] drop_label_issues)"
    " rows confident learning suspects of a wrong label.",
)
def clean_data(
    context: dg.AssetExecutionContext, project: MllifeProject, raw_data: RawData
) -> dg.Output[CleanData]:
    # Runs only once the blocking raw contract passed: the moment to freeze an inferred one.
    settled = settle_contract(project.config, raw_data)
    if settled is not None:
        context.log.info(settled)
    result = clean(project.config, raw_data)
    if project.config.cleaning.drop_label_issues:
        result, found = drop_label_issues(project.config, result)
        context.log.info(f"clean_data: {found.describe()}; dropped ([cleaning])")
    rows, dropped = result.rows, result.dropped
    reasons = (
        dropped.with_columns(pl.col("reason").str.replace(r":.*| of .*| \(.*", ""))
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
    return versioned_output(
        result,
        result.content_version,
        metadata={
            "dagster/row_count": rows.height,
            "dagster/column_schema": column_schema(rows),
            "dropped": dropped.height,
            "dropped_by_reason": frame_table(reasons),
            "dropped_rows": frame_table(dropped),
            **({"markup": markup} if (markup := markup_note(rows, result.columns)) else {}),
            **({"contract": settled} if settled else {}),
        },
    )


@dg.asset_check(
    asset=clean_data,
    blocking=True,
    description="pandera contract of the clean rows: labelled, declared classes,"
    " unique content; at least two classes.",
)
def clean_data_contract(project: MllifeProject, clean_data: CleanData) -> dg.AssetCheckResult:
    return contract_check(clean_contract(project.config, clean_data))


@dg.asset_check(
    asset=clean_data,
    blocking=True,
    description="Class set unchanged since the champion (model shift): new classes, or"
    " classes no longer present, pass only when [data] classes declares the new set.",
)
def class_set(project: MllifeProject, clean_data: CleanData) -> dg.AssetCheckResult:
    change = class_set_change(project.config, project.store, clean_data.rows["label"])
    return dg.AssetCheckResult(
        passed=change.passed,
        metadata={
            "summary": change.reason,
            "classes": dg.MetadataValue.json(list(change.current)),
            "added": dg.MetadataValue.json(list(change.added)),
            "removed": dg.MetadataValue.json(list(change.removed)),
        },
    )


@dg.asset_check(
    asset=clean_data,
    description="Class balance: warns when the largest class"
    " has more than 10x the rows of the smallest.",
)
def class_balance_check(clean_data: CleanData) -> dg.AssetCheckResult:
    balance = class_balance(clean_data)
    return dg.AssetCheckResult(
        passed=balance.passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "ratio": balance.ratio,
            "counts": dg.MetadataValue.json(balance.counts),
            "summary": balance.describe(),
        },
    )


@dg.asset(
    pool=pools.STORE,
    group_name="data",
    kinds={"polars", "duckdb"},
    description="Train/validation/test assignment, stratified per class. Rows seen before"
    " keep their split (remembered in the store); new rows fill each class's shortfall in"
    " the order of a seeded hash of their key, so identical content never spans splits.",
)
def splits(project: MllifeProject, clean_data: CleanData) -> dg.Output[SplitSet]:
    config = project.config
    split_set, new = make_splits(config, clean_data, store=project.store)
    sizes = split_set.sizes()
    save_split_manifest(config, split_set)
    project.store.record_split(
        split_version=split_set.split_version,
        data_version=clean_data.data_version,
        seed=config.split.seed,
        sizes=sizes,
    )
    if (near := split_set.near_duplicates) is not None:
        for finding, count in (
            ("near_duplicate_leaks", near.n_leaks),
            ("near_duplicates_within_splits", sum(near.within.values())),
        ):
            project.store.record_data_finding(
                split_version=split_set.split_version,
                finding=finding,
                count=count,
                summary=near.describe(),
            )
    per_class = split_set.rows.pivot(
        on="split", index="label", values="sha256", aggregate_function="len"
    )
    return versioned_output(
        split_set,
        split_set.split_version,
        metadata={
            "split_version": split_set.split_version,
            "sizes": dg.MetadataValue.json(sizes),
            "newly_assigned_rows": new,
            "per_class": frame_table(per_class.sort("label")),
            "dagster/row_count": split_set.rows.height,
        },
    )


@dg.asset_check(
    asset=splits,
    blocking=True,
    description="No content (by key) appears in more than one split, and no near-duplicate"
    " of a file or row (a resized or re-encoded photo, a row typed again) sits in another"
    " split than its copy ([split] near_duplicate_distance).",
)
def no_leakage(splits: SplitSet) -> dg.AssetCheckResult:
    leaks = leaking_keys(splits.rows, key=splits.key)
    metadata = {"leaking_keys": len(leaks), "examples": leaks[:20]}
    near = splits.near_duplicates
    if near is not None:
        shown = pl.DataFrame(
            [(p.first, p.first_split, p.second, p.second_split, round(p.distance, 4))
             for p in near.pairs[:50]],
            schema=["first", "first_split", "second", "second_split", "distance"],
            orient="row",
        )  # fmt: skip
        metadata |= {
            "near_duplicate_leaks": near.n_leaks,
            "near_duplicates_within_splits": dg.MetadataValue.json(near.within),
            "near_duplicates": frame_table(shown),
            "near_duplicate_search": near.describe(),
        }
    passed = not leaks and (near is None or not near.n_leaks)
    problems = [f"{len(leaks)} key(s) in two splits, e.g. {leaks[0]}"] if leaks else []
    if near is not None and near.n_leaks:
        first = near.leaks[0]
        problems.append(
            f"{near.n_leaks} near-duplicate pair(s) across splits, e.g. {first.first}"
            f" ({first.first_split}) and {first.second} ({first.second_split}): remove one"
            " copy of each pair at the source, or give the copies one group ([split] group"
            " / group_pattern)"
        )
    if problems:
        metadata["summary"] = "; ".join(problems)
    return dg.AssetCheckResult(passed=passed, metadata=metadata)


@dg.asset(
    pool=pools.STORE,  # records what it found in the store
    group_name="data",
    kinds={"cleanlab"},
    description="Suspected label errors in the training split: confident learning (cleanlab)"
    " on out-of-fold probabilities of a logistic regression over each row's features (a"
    " table's columns, an image's grayscale thumbnail), worst first, with the label the"
    " probabilities favour. Reported, never dropped: look at them, fix the labels at the"
    " source, and the next run trains on the fix.",
)
def label_issues(project: MllifeProject, splits: SplitSet) -> dg.Output[LabelIssues]:
    found = training_label_issues(project.config, splits)
    project.store.record_data_finding(
        split_version=splits.split_version,
        finding="label_issues",
        count=len(found.issues),
        summary=found.describe(),
    )
    shown = pl.DataFrame(
        [{"row": i.key, "given": i.given, "suggested": i.suggested,
          "quality": round(i.quality, 4)} for i in found.issues[:50]],
        schema={"row": pl.String, "given": pl.String, "suggested": pl.String,
                "quality": pl.Float64},
    )  # fmt: skip
    return dg.Output(
        found,
        metadata={
            "suspected": len(found.issues),
            "checked": found.checked,
            "summary": found.describe(),
            "worst": frame_table(shown),
        },
    )
