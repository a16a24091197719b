"""Which rows belong together (``[split] group``, ``group_pattern``, ``group_manifest``):
a patient's visits, one camera's photos. Whole groups go to one split
(:func:`mllife.data.split.assign_groups`)."""

from __future__ import annotations

import re

import polars as pl

from mllife._errors import DataError
from mllife.config.project import ProjectConfig

__all__ = ["grouping_key", "split_groups"]


def split_groups(config: ProjectConfig, rows: pl.DataFrame) -> pl.Series | None:
    """Each row's group for ``[split] group`` / ``group_pattern``, or None (no grouping).
    A row without a group is an error naming it: it could land beside its group's
    other rows in any split."""
    split = config.split
    if split.group:
        if split.group not in rows.columns:
            raise DataError(
                f"[split] group {split.group!r} is not a column of the table; columns are"
                f" {[c for c in rows.columns if c not in ('row', 'label', 'sha256')][:20]}"
            )
        groups = rows[split.group]
        missing = rows.filter(groups.is_null())
        where = "row"
        shown = missing["row"].to_list() if "row" in missing.columns else []
    elif split.group_manifest:
        groups = _manifest_groups(config, rows["path"])
        missing = rows.filter(groups.is_null())
        where, shown = "file", missing["path"].to_list()
    elif split.group_pattern:
        pattern = re.compile(split.group_pattern)
        found = [pattern.search(p) for p in rows["path"].to_list()]
        groups = pl.Series("group", [m.group(1) if m else None for m in found], dtype=pl.String)
        missing = rows.filter(groups.is_null())
        where, shown = "file", missing["path"].to_list()
    else:
        return None
    if missing.height:
        listed = ", ".join(map(str, shown[:5])) + (" ..." if missing.height > 5 else "")
        raise DataError(
            f"[split] {grouping_key(split)}: {missing.height}"
            f" {where}(s) have no group ({listed}); give every {where} one, or drop them"
        )
    return groups


def grouping_key(split) -> str:
    return next(k for k in ("group", "group_pattern", "group_manifest") if getattr(split, k))


def _manifest_groups(config: ProjectConfig, paths: pl.Series) -> pl.Series:
    """Each file's group from ``[split] group_manifest`` (None where it names none)."""
    source = config.root / config.split.group_manifest
    try:
        table = pl.read_csv(source, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"[split] group_manifest {source}: cannot read it: {exc}") from None
    if not {"path", "group"} <= set(table.columns):
        raise DataError(
            f"[split] group_manifest {source}: needs columns path and group, has {table.columns}"
        )
    table = table.filter(pl.col("path").is_not_null() & pl.col("group").is_not_null())
    twice = table.group_by("path").agg(pl.col("group").n_unique()).filter(pl.col("group") > 1)
    if twice.height:
        raise DataError(
            f"[split] group_manifest {source}: {twice.height} path(s) in two groups, e.g."
            f" {twice['path'][0]}; give each file one group"
        )
    folder = config.data.path.rstrip("/")
    groups = dict(table.select("path", "group").iter_rows())
    groups |= {f"{folder}/{p}": g for p, g in groups.items()}  # relative to the data folder
    return pl.Series("group", [groups.get(p) for p in paths.to_list()], dtype=pl.String)
