"""Schema contracts for data manifests, written with pandera's polars backend.

A contract check never raises for bad data: it returns a :class:`ContractResult` that
says how many rows failed, per kind of failure, with up to 20 examples naming the file,
so an asset check can show exactly what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl

from mllife.data.dropped import number_ranges

__all__ = ["ContractResult", "check_contract", "clean_image_schema", "raw_image_schema"]

_SHA256 = r"^[0-9a-f]{64}$"
MAX_EXAMPLES = 20


def raw_image_schema(classes: tuple[str, ...] | list[str]) -> pa.DataFrameSchema:
    """Every scanned file: unique path, a declared class, a content hash, a size.

    Width, height and mode may be null: unreadable files are kept in the raw manifest
    (with their ``error``) so that cleaning can report them, not silently lose them.
    """
    return pa.DataFrameSchema(
        {
            "path": pa.Column(pl.String, unique=True),
            "label": pa.Column(pl.String, pa.Check.isin(list(classes)), nullable=True),
            "sha256": pa.Column(pl.String, pa.Check.str_matches(_SHA256)),
            "size_bytes": pa.Column(pl.Int64, pa.Check.ge(0)),
            "width": pa.Column(pl.Int64, pa.Check.gt(0), nullable=True),
            "height": pa.Column(pl.Int64, pa.Check.gt(0), nullable=True),
            "mode": pa.Column(pl.String, nullable=True),
            "error": pa.Column(pl.String, nullable=True),
        },
        strict=True,
        name="raw_images",
    )


def clean_image_schema(classes: tuple[str, ...] | list[str]) -> pa.DataFrameSchema:
    """Rows fit for training: readable, labelled, unique content."""
    return pa.DataFrameSchema(
        {
            "path": pa.Column(pl.String, unique=True),
            "label": pa.Column(pl.String, pa.Check.isin(list(classes))),
            "sha256": pa.Column(pl.String, [pa.Check.str_matches(_SHA256)], unique=True),
            "size_bytes": pa.Column(pl.Int64, pa.Check.gt(0)),
            "width": pa.Column(pl.Int64, pa.Check.gt(0)),
            "height": pa.Column(pl.Int64, pa.Check.gt(0)),
            "mode": pa.Column(pl.String),
        },
        strict=True,
        name="clean_images",
    )


@dataclass(frozen=True)
class ContractResult:
    schema: str
    n_rows: int
    passed: bool
    #: failures per (column, check), e.g. {"label: isin([...])": 3}
    counts: dict[str, int] = field(default_factory=dict)
    #: up to 20 failing cases: column, check, value, and the file (path) where known
    examples: list[dict[str, object]] = field(default_factory=list)
    #: every refused row's number (the table's own row numbers where known)
    refused_rows: tuple[int, ...] = ()

    def describe(self) -> str:
        if self.passed:
            return f"{self.schema}: all {self.n_rows} rows pass"
        parts = ", ".join(f"{k} x{v}" for k, v in self.counts.items())
        where = f"; refused rows: {number_ranges(self.refused_rows)}" if self.refused_rows else ""
        return f"{self.schema}: contract failed on {self.n_rows} rows: {parts}{where}"


def check_contract(
    frame: pl.DataFrame,
    schema: pa.DataFrameSchema,
    *,
    locate: pl.Series | None = None,
    hidden: frozenset[str] = frozenset(),
) -> ContractResult:
    """Validate ``frame`` lazily (all failures at once) and summarise the failures.

    Examples name the file (``path`` column) or, with ``locate``, the row number; the
    values of ``hidden`` columns (``[data] pii``) are never shown.
    """
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return ContractResult(schema=schema.name or "schema", n_rows=frame.height, passed=True)

    # Frame-level failures name the column in their failure case: say it in words.
    what = (
        pl.when(pl.col("check") == "column_in_dataframe")
        .then(pl.lit("missing column '") + pl.col("failure_case").cast(pl.String) + "'")
        .when(pl.col("check") == "column_in_schema")
        .then(pl.lit("unexpected column '") + pl.col("failure_case").cast(pl.String) + "'")
        .otherwise(
            pl.concat_str([pl.col("column").fill_null("<frame>"), pl.col("check")], separator=": ")
        )
    )
    cases = cases.with_columns(what.alias("what"))

    counts = dict(cases.group_by("what", maintain_order=True).len().iter_rows())
    examples: list[dict[str, object]] = []
    paths = frame["path"].to_list() if "path" in frame.columns else None
    for row in cases.head(MAX_EXAMPLES).iter_rows(named=True):
        index = row["index"]
        example: dict[str, object] = {
            "column": row["column"],
            "check": row["check"],
            "value": "(pii, hidden)" if row["column"] in hidden else row["failure_case"],
            "row": index,
        }
        if paths is not None and index is not None and 0 <= index < len(paths):
            example["path"] = paths[index]
        if locate is not None and index is not None and 0 <= index < len(locate):
            example["row"] = locate[index]
        examples.append(example)
    refused: tuple[int, ...] = ()
    if locate is not None:  # table rows: every refused row by its number in the file
        indexes = cases["index"].drop_nulls().unique().sort()
        indexes = indexes.filter((indexes >= 0) & (indexes < len(locate)))
        refused = tuple(locate.gather(indexes).cast(pl.Int64).to_list())
    return ContractResult(
        schema=schema.name or "schema",
        n_rows=frame.height,
        passed=False,
        counts={str(k): int(v) for k, v in counts.items()},
        examples=examples,
        refused_rows=refused,
    )
