"""Turning mllife results into Dagster metadata."""

import base64

import dagster as dg
import polars as pl

from mllife.data.contracts import ContractResult


def png(data: bytes, alt: str) -> dg.MetadataValue:
    encoded = base64.b64encode(data).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def frame_md(frame: pl.DataFrame, *, limit: int = 20) -> dg.MetadataValue:
    head = frame.head(limit)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in head.iter_rows()]
    if frame.height > limit:
        lines.append(f"\n… {frame.height - limit} more rows")
    return dg.MetadataValue.md("\n".join(lines))


_DAGSTER_TYPES = {pl.String: "string", pl.Int64: "int", pl.Float64: "float", pl.Boolean: "bool"}


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
        metadata["failing_examples"] = frame_md(examples.cast(pl.String))
    return dg.AssetCheckResult(passed=result.passed, severity=severity, metadata=metadata)
