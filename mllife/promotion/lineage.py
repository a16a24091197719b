"""One model's lineage, from the store: data version -> split -> model -> evaluation ->
decision. The same hashes are the Dagster data versions of ``raw_data``, ``splits`` and
``candidate_<name>``, and DVC's hashes of ``data/`` and the artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from mllife.storage.store import Store

__all__ = ["Lineage", "lineage"]


@dataclass(frozen=True)
class Lineage:
    model: dict[str, Any]
    dataset: dict[str, Any] | None
    split: dict[str, Any] | None
    evaluations: pl.DataFrame
    challengers: pl.DataFrame
    deployments: pl.DataFrame

    def lines(self, *, artifacts_dir: Path | None = None) -> list[str]:
        m = self.model
        out = [f"model {m['name']} ({m['kind']}, {m['size_bytes'] / 1024:.1f} KB)"]
        d = self.dataset
        out.append(
            f"  data version   {m['data_version']}"
            + ("" if d is None else f"  ({d['n_rows']} rows from {d['source']})")
        )
        s = self.split
        sizes = (
            ""
            if s is None
            else f"  (train {s['n_train']} / validation {s['n_validation']} / test"
            f" {s['n_test']}, seed {s['seed']})"
        )
        out.append(f"  split version  {m['split_version']}{sizes}")
        out.append(f"  model hash     {m['model_hash']}  (run {m['run_id']})")
        for split in ("validation", "test"):
            part = self.evaluations.filter(pl.col("split") == split)
            if part.height:
                values = dict(zip(part["metric"], part["value"], strict=True))
                out.append(
                    f"  evaluation     {split}: accuracy {values.get('accuracy', float('nan')):.4f}"
                    f", macro F1 {values.get('macro_f1', float('nan')):.4f}"
                )
        for row in self.challengers.iter_rows(named=True):
            verdict = "passed the policy" if row["passed"] else "refused by the policy"
            out.append(f"  decision       run {row['run_id']}: {verdict}: {row['summary']}")
        for row in self.deployments.iter_rows(named=True):
            out.append(
                f"  deployment     #{row['id']} {row['created_at']:%Y-%m-%d %H:%M}"
                f" {row['action']}: {row['reason']}"
            )
        if self.challengers.height == 0 and self.deployments.height == 0:
            out.append("  decision       never chosen as challenger, never deployed")
        out.append(
            f"  dagster        raw_data={m['data_version']} splits={m['split_version']}"
            f" candidate_{m['name']}={m['model_hash'][:12]}..."
        )
        if artifacts_dir is not None:
            path = artifacts_dir / m["artifact_path"]
            state = "present" if path.is_file() else "missing: `mllife checkout` restores it"
            out.append(f"  artifact       {path} ({state})")
        return out


def lineage(store: Store, model: str) -> Lineage:
    """The lineage of a recorded model (hash or unique prefix of 6+ hex digits)."""
    row = store.resolve_model(model)
    model_hash = row["model_hash"]
    datasets = store.query("SELECT * FROM datasets WHERE data_version = ?", [row["data_version"]])
    splits = store.query("SELECT * FROM splits WHERE split_version = ?", [row["split_version"]])
    return Lineage(
        model=row,
        dataset=datasets.row(0, named=True) if datasets.height else None,
        split=splits.row(0, named=True) if splits.height else None,
        evaluations=store.query(
            "SELECT split, metric, value FROM evaluations WHERE model_hash = ? ORDER BY created_at",
            [model_hash],
        ),
        challengers=store.query(
            "SELECT run_id, passed, summary, created_at FROM challengers WHERE model_hash = ?"
            " ORDER BY created_at",
            [model_hash],
        ),
        deployments=store.query(
            "SELECT id, action, reason, created_at FROM deployments WHERE model_hash = ?"
            " ORDER BY id",
            [model_hash],
        ),
    )
