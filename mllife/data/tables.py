"""Tables (Parquet or CSV with a target column): manifest, contract and cleaning.

Each row gets ``row`` (its 1-based position in the file, for error messages), ``label``
(the target as text) and ``sha256`` (a stable hash of its feature values: identical
features give the same hash, so duplicates and conflicting labels can be found, and it
keys the split when no id column is declared).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandera.polars as pa
import polars as pl

from mllife._errors import DataError
from mllife.config.project import ColumnConfig, DataConfig
from mllife.data.images import DROPPED_SCHEMA, drop_conflicting_labels

__all__ = [
    "POLARS_DTYPES",
    "RESERVED",
    "as_declared",
    "clean_table",
    "feature_columns",
    "read_table",
    "row_hashes",
    "table_manifest",
    "table_schema",
    "TABLE_SUFFIXES",
]

#: the polars dtype that holds each contract dtype's values (training tables and served
#: rows alike)
POLARS_DTYPES = {
    "float": pl.Float64,
    "int": pl.Int64,
    "bool": pl.Boolean,
    "string": pl.String,
    "category": pl.String,
    "text": pl.String,
}


RESERVED = frozenset({"row", "label", "sha256", "split"})


def read_table(path: Path) -> pl.DataFrame:
    """A Parquet or CSV file as a polars frame; a clear error when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"table {path} does not exist. Run `mllife data init` to write the default"
            " example there, or set [data] path in mllife.toml to your .parquet or .csv file."
        )
    try:
        frame = _read(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"cannot read table {path}: {exc}") from exc
    if frame.height == 0:
        raise DataError(f"table {path} has no rows")
    _refuse_wide_integers(frame, path)
    return frame


#: the table formats read, by file suffix
TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson")


def _read(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix in (".jsonl", ".ndjson"):
        return pl.read_ndjson(path, infer_schema_length=10_000)
    try:
        return pl.read_csv(path, infer_schema_length=10_000)
    except pl.exceptions.ComputeError as exc:
        if "utf-8" not in str(exc).lower():
            raise
        # Some rows are not UTF-8 (a file pasted together from several encodings): read
        # them with U+FFFD for the bad bytes, and cleaning drops those rows, saying why.
        return pl.read_csv(path, infer_schema_length=10_000, encoding="utf8-lossy")


def _refuse_wide_integers(frame: pl.DataFrame, path: Path) -> None:
    """Integers beyond 64 bits (polars reads them as Int128/UInt64) cannot be features,
    hashes or store values; name the first one instead of failing deep inside."""
    for name, dtype in frame.schema.items():
        if not dtype.is_integer() or dtype in (pl.Int8, pl.Int16, pl.Int32, pl.Int64):
            continue
        if dtype in (pl.UInt8, pl.UInt16, pl.UInt32):
            continue
        too_wide = frame[name].cast(pl.Int64, strict=False).is_null() & frame[name].is_not_null()
        if too_wide.any():
            row = int(too_wide.arg_max())
            raise DataError(
                f"table {path}, column {name!r}, row {row}: {frame[name][row]} does not fit"
                " a 64-bit integer; store such ids as text (quote them) or scale the values"
            )


def feature_columns(frame: pl.DataFrame, data: DataConfig) -> list[str]:
    # labels, keys, times and what is only measured: never inputs
    kept_apart = {data.target, data.id, data.time, *data.measure_only}
    return [c for c in frame.columns if c not in RESERVED and c not in kept_apart]


def table_manifest(frame: pl.DataFrame, data: DataConfig, *, source: str) -> pl.DataFrame:
    """Add ``row``, ``label`` and ``sha256`` to a raw table."""
    clash = sorted(RESERVED & set(frame.columns))
    if clash:
        raise DataError(f"{source}: column names {clash} are reserved by mllife; rename them")
    if data.target not in frame.columns:
        raise DataError(
            f"{source}: the target column {data.target!r} is missing; columns are"
            f" {frame.columns[:20]}. Set [data] target in mllife.toml."
        )
    if data.id is not None and data.id not in frame.columns:
        raise DataError(f"{source}: the id column {data.id!r} is missing")
    if data.time is not None and data.time not in frame.columns:
        raise DataError(f"{source}: the time column {data.time!r} ([data] time) is missing")
    if missing := [c for c in data.measure_only if c not in frame.columns]:
        raise DataError(f"{source}: [data] measure_only names missing column(s) {missing}")
    features = feature_columns(frame, data)
    if not features:
        raise DataError(f"{source}: no feature columns besides the target and id")
    # NaN in a float column is a missing value, like null.
    frame = frame.with_columns(
        pl.col(c).fill_nan(None) for c, t in frame.schema.items() if t.is_float()
    )
    hashes = row_hashes(frame, features)
    return frame.with_columns(
        pl.int_range(1, frame.height + 1).alias("row"),
        pl.col(data.target).cast(pl.String).alias("label"),
        pl.Series("sha256", hashes, dtype=pl.String),
    )


HASH_CHUNK = 1 << 16


def row_hashes(frame: pl.DataFrame, columns: list[str]) -> list[str]:
    """A stable 128-bit hash (32 hex digits of sha256) of each row's values.

    Numbers are hashed as their 8 raw bytes plus a null flag (no float formatting), text
    as UTF-8; rows are processed in chunks so memory stays bounded. The same values in
    the same column types give the same hash on any machine and any polars version.

    The bytes hashed are an unambiguous encoding of the row (two different rows never
    hash the same input): text values are joined with a unit separator and a null is a
    lone NUL, which is unambiguous while no value contains either character; a row whose
    text does is encoded length-prefixed instead, behind a marker no joined row can start
    with. Ordinary rows thus keep the hashes they always had (their split keys stay).
    """
    out: list[str] = []
    sha256 = hashlib.sha256
    for start in range(0, frame.height, HASH_CHUNK):
        part = frame.slice(start, HASH_CHUNK).select(columns)
        blocks: list[np.ndarray] = []
        texts: list[list[str | None]] = []
        for name in columns:
            column = part[name]
            if column.dtype.is_numeric() or column.dtype == pl.Boolean:
                as_float = column.dtype.is_float()
                column = column.cast(pl.Float64 if as_float else pl.Int64)
                blocks.append(column.is_null().to_numpy().astype(np.uint8)[:, None])
                values = column.fill_null(0).to_numpy()
                if as_float:
                    values = values + 0.0  # -0.0 and 0.0 are the same value
                blocks.append(np.ascontiguousarray(values).view(np.uint8).reshape(-1, 8))
            else:
                texts.append(column.cast(pl.String).to_list())
        fixed = np.hstack(blocks) if blocks else np.zeros((part.height, 0), np.uint8)
        data, width = fixed.tobytes(), fixed.shape[1]
        if texts:
            for i, values in enumerate(zip(*texts, strict=True)):
                row = data[i * width : (i + 1) * width] + _text_bytes(values)
                out.append(sha256(row).hexdigest()[:32])
        else:
            out.extend(
                sha256(data[i * width : (i + 1) * width]).hexdigest()[:32]
                for i in range(part.height)
            )
    return out


#: starts every length-prefixed text part; a joined part never starts with two NULs
#: (a leading null is one NUL followed by a separator or by nothing)
_ESCAPED = b"\x00\x00"


def _text_bytes(values: tuple[str | None, ...]) -> bytes:
    if not any(v is not None and ("\x1f" in v or "\x00" in v) for v in values):
        return "\x1f".join("\x00" if v is None else v for v in values).encode()
    parts = [_ESCAPED]
    for value in values:
        if value is None:
            parts.append(b"\x00")
        else:
            encoded = value.encode()
            parts.append(b"\x01" + len(encoded).to_bytes(8, "little") + encoded)
    return b"".join(parts)


def table_schema(
    columns: dict[str, ColumnConfig], data: DataConfig, *, classes: tuple[str, ...]
) -> pa.DataFrameSchema:
    """The pandera contract of the raw table (strict: no missing or extra columns)."""
    fields: dict[str, pa.Column] = {}
    for name, spec in columns.items():
        checks = []
        if spec.min is not None:
            checks.append(pa.Check.ge(spec.min))
        if spec.max is not None:
            checks.append(pa.Check.le(spec.max))
        if spec.categories is not None:
            checks.append(pa.Check.isin(list(spec.categories)))
        dtype = POLARS_DTYPES[spec.dtype]
        fields[name] = pa.Column(dtype, checks, nullable=spec.nullable)
    allowed = list(classes)

    def label_is_a_class(data) -> pl.LazyFrame:  # pandera passes PolarsData
        value = pl.col(data.key)
        return data.lazyframe.select(value.cast(pl.String).is_in(allowed) | value.is_null())

    fields[data.target] = pa.Column(
        None, pa.Check(label_is_a_class, name="label among the classes"), nullable=True
    )
    if data.id is not None:
        fields[data.id] = pa.Column(None, unique=True)
    for kept in (data.time, *data.measure_only):  # checked where they are read
        if kept is not None:
            fields[kept] = pa.Column(None, nullable=True)
    return pa.DataFrameSchema(fields, strict=True, name="raw_table")


def as_declared(frame: pl.DataFrame, columns: dict[str, ColumnConfig]) -> pl.DataFrame:
    """Integers where floats are declared become floats (a CSV may hold 3 for 3.0).

    Done here rather than by pandera's ``coerce``, which fails outright on a missing
    column instead of reporting it.
    """
    return frame.with_columns(
        pl.col(name).cast(pl.Float64)
        for name, spec in columns.items()
        if spec.dtype == "float" and name in frame.columns and frame[name].dtype.is_integer()
    )


def clean_table(
    raw: pl.DataFrame, data: DataConfig, *, text_columns: list[str] = ()
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows fit for training, and the dropped rows with a reason each (``text_columns``:
    free text, cleaned by :func:`mllife.data.text_cleaning.clean_texts` too)."""
    features = feature_columns(raw.drop("row", "label", "sha256"), data)
    dropped: list[pl.DataFrame] = []

    def drop(rows: pl.DataFrame, reason: pl.Expr) -> None:
        if rows.height:
            dropped.append(
                rows.select(
                    pl.concat_str([pl.lit("row "), pl.col("row").cast(pl.String)]).alias("path"),
                    "label",
                    "sha256",
                    reason.alias("reason"),
                )
            )

    rest = raw
    unlabelled = rest.filter(pl.col("label").is_null())
    drop(unlabelled, pl.lit(f"missing label (target {data.target!r} is empty)"))
    rest = rest.filter(pl.col("label").is_not_null())
    if data.missing == "drop":
        incomplete = pl.any_horizontal(pl.col(c).is_null() for c in features)
        missing = rest.filter(incomplete)
        drop(missing, pl.lit("missing feature value (missing = 'drop')"))
        rest = rest.filter(~incomplete)
    rest = drop_conflicting_labels(rest, drop, what="features")
    first = rest.group_by("sha256").agg(pl.col("row").min().alias("kept"))
    with_first = rest.join(first, on="sha256")
    duplicates = with_first.filter(pl.col("row") != pl.col("kept"))
    drop(duplicates, pl.lit("exact duplicate of row ") + pl.col("kept").cast(pl.String))
    clean = with_first.filter(pl.col("row") == pl.col("kept")).drop("kept").sort("row")
    if text_columns:
        from mllife.data.text_cleaning import clean_texts

        clean = clean_texts(
            clean, drop, columns=list(text_columns), features=features,
            max_chars=data.max_text_chars,
        ).sort("row")  # fmt: skip
    report = pl.concat(dropped) if dropped else pl.DataFrame(schema=DROPPED_SCHEMA)
    return clean, report
