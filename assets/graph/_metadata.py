"""Turning mllife results into Dagster metadata."""

import base64
import contextlib
import warnings

import dagster as dg
import polars as pl

from mllife.data.contracts import ContractResult


def png(data: bytes, alt: str) -> dg.MetadataValue:
    encoded = base64.b64encode(data).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


_DAGSTER_TYPES = {pl.String: "string", pl.Int64: "int", pl.Float64: "float", pl.Boolean: "bool"}


def _cell(value):
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def frame_table(frame: pl.DataFrame, *, limit: int = 200) -> dg.MetadataValue:
    """A frame as Dagster table metadata (sortable in the UI), at most ``limit`` rows."""
    head = frame.head(limit)
    records = [
        dg.TableRecord({k: _cell(v) for k, v in row.items()}) for row in head.iter_rows(named=True)
    ]
    return dg.MetadataValue.table(records, schema=column_schema(head))


def column_schema(frame: pl.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, _DAGSTER_TYPES.get(dtype, str(dtype)))
            for name, dtype in frame.schema.items()
        ]
    )


def contract_check(result: ContractResult, *, severity=dg.AssetCheckSeverity.ERROR):
    examples = pl.DataFrame(result.examples) if result.examples else None
    metadata = {
        "rows": result.n_rows,
        "failures_by_kind": dg.MetadataValue.json(result.counts),
        "summary": result.describe(),
    }
    if examples is not None:
        metadata["failing_examples"] = frame_table(examples.cast(pl.String))
    return dg.AssetCheckResult(passed=result.passed, severity=severity, metadata=metadata)


@contextlib.contextmanager
def accepting_beta():
    """Dagster's beta APIs we rely on (data versions, source-code links), their warning
    accepted for the call inside only, rather than by a process-wide filter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        yield


def versioned_output(value, version: str, **kwargs) -> dg.Output:
    """``dg.Output`` with a data version (a beta parameter: the documented way to
    version an asset)."""
    with accepting_beta():
        return dg.Output(value, data_version=dg.DataVersion(version), **kwargs)
