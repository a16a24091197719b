"""A table's feature contract: inferred from the data, frozen on purpose, told in words.

The contract comes from ``[data.columns]`` in mllife.toml, else from the frozen schema
file, else it is inferred from the data. An inferred contract is *provisional*: it is
frozen into the schema file only after a run whose contract passed (and only when the
inference found nothing doubtful), or when the user runs ``mllife schema freeze``. So a
dirty first file cannot freeze a dirty dtype without a word: a column that is numeric
except for a few text values is reported with those values and rows, and read as a
number with those values as missing until the user decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mllife._errors import DataError
from mllife.config.sections import ColumnConfig, DataConfig
from mllife.storage.files import write_atomically

__all__ = [
    "Contract",
    "NumericLooking",
    "describe_columns",
    "feature_names",
    "freeze_contract",
    "infer_contract",
    "load_contract",
    "with_missing_values",
]

MAX_CATEGORIES = 50
#: a text column is "numeric-looking" when at most this many distinct values (and at
#: most this share of its values) are not numbers
MAX_ODD_VALUES = 5
MAX_ODD_SHARE = 0.1
#: rows named per odd value in a report
ROWS_SHOWN = 5


@dataclass(frozen=True)
class NumericLooking:
    """A text column whose values are numbers except for a few."""

    column: str
    #: each non-number value with the 1-based rows (of the file) that hold it
    odd_values: dict[str, list[int]]
    n_numbers: int

    def describe(self) -> str:
        n_odd = sum(len(rows) for rows in self.odd_values.values())
        parts = []
        for value, rows in self.odd_values.items():
            shown = ", ".join(str(r) for r in rows[:ROWS_SHOWN])
            more = f" and {len(rows) - ROWS_SHOWN} more" if len(rows) > ROWS_SHOWN else ""
            where = "row" if len(rows) == 1 else "rows"
            parts.append(f"{json.dumps(value)} at {where} {shown}{more}")
        value_word = "value is" if n_odd == 1 else "values are"
        tokens = json.dumps(list(self.odd_values))
        return (
            f"{self.column} looks numeric; {n_odd} {value_word} not a number: "
            + "; ".join(parts)
            + f" -- treat it as missing? This run reads them as missing; to keep that,"
            f" run `mllife schema freeze` (it writes missing_values = {tokens} for"
            f" {self.column}); otherwise fix the file"
        )


@dataclass(frozen=True)
class Contract:
    columns: dict[str, ColumnConfig]
    #: where it came from, in words ("declared in mllife.toml", ...)
    origin: str
    #: False while inferred and not yet written to the schema file
    frozen: bool
    findings: tuple[NumericLooking, ...] = ()


def infer_contract(frame: pl.DataFrame, features: list[str]) -> Contract:
    """A contract read off the data: dtypes, observed ranges, nullability, categories."""
    spec: dict[str, ColumnConfig] = {}
    findings: list[NumericLooking] = []
    rows = pl.int_range(1, frame.height + 1, eager=True)
    for name in features:
        column = frame[name]
        finding = _numeric_looking(column, rows) if column.dtype == pl.String else None
        if finding is not None:
            findings.append(finding)
            numbers = column.cast(pl.Float64, strict=False)
            spec[name] = ColumnConfig(
                dtype="float",
                nullable=True,
                min=_num(numbers.min()),
                max=_num(numbers.max()),
                missing_values=tuple(finding.odd_values),
            )
        else:
            spec[name] = _column_spec(column)
    return Contract(spec, "inferred from the data, not frozen yet", False, tuple(findings))


def _column_spec(column: pl.Series) -> ColumnConfig:
    nullable = column.null_count() > 0
    dtype = column.dtype
    if dtype == pl.Boolean:
        return ColumnConfig(dtype="bool", nullable=nullable)
    if dtype.is_numeric():
        kind = "int" if dtype.is_integer() else "float"
        return ColumnConfig(
            dtype=kind, nullable=nullable, min=_num(column.min()), max=_num(column.max())
        )
    values = column.cast(pl.String).drop_nulls().unique().sort().to_list()
    if len(values) <= MAX_CATEGORIES:
        return ColumnConfig(dtype="category", nullable=nullable, categories=tuple(values))
    return ColumnConfig(dtype="text", nullable=nullable)


def _numeric_looking(column: pl.Series, rows: pl.Series) -> NumericLooking | None:
    present = column.is_not_null()
    numbers = column.str.strip_chars().cast(pl.Float64, strict=False)
    odd = present & numbers.is_null()
    n_odd, n_present = int(odd.sum()), int(present.sum())
    if n_odd == 0 or n_odd == n_present or n_odd > MAX_ODD_SHARE * n_present:
        return None
    found = pl.DataFrame({"value": column.filter(odd), "row": rows.filter(odd)})
    by_value = found.group_by("value", maintain_order=True).agg("row")
    if by_value.height > MAX_ODD_VALUES:
        return None
    odd_values = {v: list(r) for v, r in by_value.iter_rows()}
    return NumericLooking(column.name, odd_values, n_present - n_odd)


def _num(value) -> float | None:
    return None if value is None else float(value)


def with_missing_values(frame: pl.DataFrame, columns: dict[str, ColumnConfig]) -> pl.DataFrame:
    """Text values a contract calls missing become null, and such a column becomes a
    number column when all its other values are numbers (left as text otherwise, so the
    contract check names it)."""
    converted = []
    for name, spec in columns.items():
        if not spec.missing_values or name not in frame.columns:
            continue
        if frame[name].dtype != pl.String:
            continue
        text = frame[name].str.strip_chars()
        cleared = pl.when(text.is_in(list(spec.missing_values))).then(None).otherwise(text)
        values = frame.select(cleared.alias(name))[name]
        target = pl.Int64 if spec.dtype == "int" else pl.Float64
        try:
            converted.append(values.cast(target, strict=True))
        except pl.exceptions.InvalidOperationError:
            continue
    return frame.with_columns(converted) if converted else frame


def load_contract(frame: pl.DataFrame | None, data: DataConfig, schema_path: Path) -> Contract:
    """The feature contract: declared in mllife.toml, else the frozen schema file, else
    inferred from ``frame`` (provisional; nothing is written)."""
    if data.columns:
        return Contract(dict(data.columns), "declared in mllife.toml", True)
    if schema_path.is_file():
        try:
            raw = json.loads(schema_path.read_text())
            columns = {k: ColumnConfig.model_validate(v) for k, v in raw["columns"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(
                f"schema file {schema_path} is not valid: {exc}; fix it, or delete it"
                " to infer the contract from the data again"
            ) from exc
        return Contract(columns, f"frozen in {schema_path.name}", True)
    if frame is None:
        raise DataError(
            f"no feature contract: {schema_path} does not exist and mllife.toml declares"
            " no [data.columns]; run `mllife run` once (a run whose contract passes"
            " freezes it) or `mllife schema freeze`"
        )
    from mllife.data.tables import feature_columns

    return infer_contract(frame, feature_columns(frame, data))


def feature_names(config) -> list[str]:
    """A table project's feature columns: the contract's (declared or frozen), else the
    data file's columns without the target and id."""
    data = config.data
    if data.columns or config.schema_path.is_file():
        return list(load_contract(None, data, config.schema_path).columns)
    from mllife.data.tables import feature_columns, read_table

    return feature_columns(read_table(config.data_path), data)


def freeze_contract(contract: Contract, schema_path: Path) -> None:
    """Write the contract to the schema file (atomically) for the user to read and edit."""
    payload = {
        "about": "mllife feature contract. Edit it to widen ranges, add categories or"
        " missing_values; delete it to infer again from the data.",
        "columns": {k: _as_json(v) for k, v in contract.columns.items()},
    }
    write_atomically(schema_path, (json.dumps(payload, indent=2) + "\n").encode())


def _as_json(spec: ColumnConfig) -> dict:
    out = spec.model_dump(mode="json", exclude_none=True)
    if not out["missing_values"]:
        del out["missing_values"]  # the usual case: keep the file short
    if not out["derived"]:
        del out["derived"]
    return out


def describe_columns(columns: dict[str, ColumnConfig]) -> list[str]:
    """The contract in words, one line per column."""
    width = max((len(name) for name in columns), default=0)
    lines = []
    for name, spec in columns.items():
        lines.append(f"{name:<{width}}  {_in_words(spec)}")
    return lines


def _in_words(spec: ColumnConfig) -> str:
    if spec.dtype in ("float", "int"):
        what = "a number" if spec.dtype == "float" else "a whole number"
        if spec.min is not None and spec.max is not None:
            what += f" from {spec.min:g} to {spec.max:g}"
        elif spec.min is not None:
            what += f" of at least {spec.min:g}"
        elif spec.max is not None:
            what += f" of at most {spec.max:g}"
    elif spec.dtype == "bool":
        what = "true or false"
    elif spec.dtype == "category":
        shown = ", ".join(json.dumps(c) for c in (spec.categories or ())[:8])
        extra = len(spec.categories or ()) - 8
        what = f"one of {shown}" + (f" and {extra} more" if extra > 0 else "")
    else:
        what = "free text"
    what += "; may be missing" if spec.nullable else "; never missing"
    if spec.missing_values:
        what += f" (the text {', '.join(json.dumps(v) for v in spec.missing_values)} counts"
        what += " as missing)"
    return what
