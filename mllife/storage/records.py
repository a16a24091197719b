"""What the lifecycle writes to the store: datasets, splits, models, search trials,
evaluations, test-set reads and deployments -- each one short write transaction."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from mllife._errors import ChampionChangedError
from mllife._faults import crash_point
from mllife.storage.queries import Deployment, current_champion

__all__ = [
    "MODEL_COLUMNS",
    "TRIAL_COLUMNS",
    "StoreRecords",
    "model_row",
    "replace_trials",
    "trial_rows",
]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


#: the columns of ``models`` and ``trials``, in the order of the rows below
MODEL_COLUMNS = ("model_hash", "name", "kind", "spec", "data_version", "split_version",
                 "artifact_path", "size_bytes", "fit_seconds", "run_id", "created_at")  # fmt: skip
TRIAL_COLUMNS = ("run_id", "candidate", "trial", "params", "metric", "score",
                 "validation_score", "status", "error", "seconds", "chosen", "model_hash",
                 "data_version", "split_version", "created_at", "lineage")  # fmt: skip


def model_row(
    *,
    model_hash: str,
    name: str,
    kind: str,
    spec: Mapping[str, Any],
    data_version: str,
    split_version: str,
    artifact_path: str,
    size_bytes: int,
    fit_seconds: float,
    run_id: str | None,
) -> list:
    """A ``models`` row (``MODEL_COLUMNS``), written directly or posted (the inbox)."""
    spec_text = json.dumps(spec, sort_keys=True)
    return [model_hash, name, kind, spec_text, data_version, split_version, artifact_path,
            size_bytes, fit_seconds, run_id, _now()]  # fmt: skip


def replace_trials(conn, keys) -> None:
    """Remove the trials of these (lineage, candidate) pairs, inside the caller's
    transaction: a training step that wrote its trials and was then stopped before it
    finished (Ctrl-C, a killed worker) is re-executed by the resume and writes them
    again; its trials are counted once."""
    for lineage, candidate in set(keys):
        conn.execute("DELETE FROM trials WHERE lineage = ? AND candidate = ?", [lineage, candidate])


def trial_rows(
    *,
    run_id: str | None,
    candidate: str,
    metric: str,
    trials: list[Mapping[str, Any]],
    chosen: int,
    model_hash: str,
    data_version: str,
    split_version: str,
    lineage: str | None = None,
) -> list[list]:
    """The ``trials`` rows of one search (``TRIAL_COLUMNS``); ``chosen``: the kept one;
    ``lineage``: the training they belong to (default: ``run_id``)."""
    now = _now()
    return [
        [
            run_id,
            candidate,
            t["index"],
            json.dumps(t["params"], sort_keys=True),
            metric,
            t["score"],
            t["validation_score"],
            t["status"],
            t["error"],
            t["seconds"],
            t["index"] == chosen,
            model_hash if t["index"] == chosen else None,
            data_version,
            split_version,
            now,
            lineage or run_id,
        ]
        for t in trials
    ]


class StoreRecords:
    """The writes of :class:`~mllife.storage.store.Store` (a mixin over its
    ``writing()`` transactions)."""

    def record_dataset(
        self,
        *,
        data_version: str,
        source: str,
        n_files: int,
        n_rows: int,
        n_dropped: int,
        n_classes: int,
    ) -> None:
        with self.writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?)",
                [data_version, source, n_files, n_rows, n_dropped, n_classes, _now()],
            )

    def record_split(
        self, *, split_version: str, data_version: str, seed: int, sizes: Mapping[str, int]
    ) -> None:
        with self.writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO splits VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    split_version,
                    data_version,
                    seed,
                    sizes.get("train", 0),
                    sizes.get("validation", 0),
                    sizes.get("test", 0),
                    _now(),
                ],
            )

    def record_data_finding(
        self, *, split_version: str, finding: str, count: int, summary: str
    ) -> None:
        """What a data check found in a split version (replacing what it found before)."""
        with self.writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO data_findings VALUES (?, ?, ?, ?, ?)",
                [split_version, finding, count, summary, _now()],
            )

    def record_model(self, **fields: Any) -> None:
        """One trained model (the keyword arguments of :func:`model_row`)."""
        with self.writing() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                model_row(**fields),
            )

    def record_trials(self, **fields: Any) -> None:
        """Every trial of one search, in one transaction (see :func:`trial_rows`); they
        replace the trials of the same candidate and lineage (a re-executed step)."""
        rows = trial_rows(**fields)
        with self.writing() as conn:
            replace_trials(conn, [(row[-1], row[1]) for row in rows])
            columns = ", ".join(TRIAL_COLUMNS)
            conn.executemany(
                f"INSERT INTO trials ({columns}) VALUES ({', '.join('?' * len(TRIAL_COLUMNS))})",
                rows,
            )

    def record_split_assignments(self, namespace: str, rows: pl.DataFrame) -> int:
        """Remember ``rows`` (key, label, split); keys already known keep their split."""
        with tempfile.TemporaryDirectory() as folder:
            staged = Path(folder) / "rows.parquet"
            rows.select("key", "label", "split").write_parquet(staged)
            with self.writing() as conn:
                before = conn.execute("SELECT count(*) FROM split_assignments").fetchone()[0]
                conn.execute(
                    "INSERT INTO split_assignments"
                    " SELECT ?, r.key, r.label, r.split, ? FROM read_parquet(?) r"
                    " ANTI JOIN (SELECT key FROM split_assignments WHERE namespace = ?) k"
                    " ON r.key = k.key",
                    [namespace, _now(), str(staged), namespace],
                )
                after = conn.execute("SELECT count(*) FROM split_assignments").fetchone()[0]
        return int(after - before)

    def record_evaluation(
        self,
        *,
        model_hash: str,
        split: str,
        split_version: str,
        metrics: Mapping[str, float],
        confusion: list[tuple[str, str, int]],
        run_id: str | None,
    ) -> None:
        """Metrics and confusion counts of one model on one split, in one transaction."""
        now = _now()
        with self.writing() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    [model_hash, split, split_version, k, float(v), run_id, now]
                    for k, v in metrics.items()
                ],
            )
            conn.execute(
                "DELETE FROM confusion WHERE model_hash = ? AND split = ? AND split_version = ?",
                [model_hash, split, split_version],
            )
            if confusion:
                conn.executemany(
                    "INSERT INTO confusion VALUES (?, ?, ?, ?, ?, ?)",
                    [[model_hash, split, split_version, t, p, int(c)] for t, p, c in confusion],
                )

    def record_test_read(
        self,
        *,
        split_version: str,
        model_hash: str,
        asset: str,
        run_id: str | None,
        n_rows: int,
    ) -> None:
        with self.writing() as conn:
            conn.execute(
                "INSERT INTO test_reads (split_version, model_hash, asset, run_id, n_rows,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [split_version, model_hash, asset, run_id, n_rows, _now()],
            )

    def record_deployment(
        self,
        *,
        action: str,
        model_hash: str,
        name: str,
        data_version: str,
        reason: str,
        decision: Mapping[str, Any],
        run_id: str | None,
        expected_previous: str | None,
        also: Callable[[Any], None] | None = None,
    ) -> Deployment:
        """Make ``model_hash`` the champion, in one transaction.

        ``expected_previous`` is the champion the caller decided against; if another
        process changed the champion meanwhile, nothing is written (compare-and-swap).
        ``also(conn)`` writes more rows in the same transaction (a rollout's end).
        """
        with self.writing() as conn:
            current = current_champion(conn)
            current_hash = current.model_hash if current else None
            if current_hash != expected_previous:
                raise ChampionChangedError(
                    f"the champion changed while deciding (expected {expected_previous},"
                    f" found {current_hash}); re-run the decision",
                    current_hash=current_hash,
                )
            crash_point("deployment:before-insert")
            conn.execute(
                "INSERT INTO deployments (action, model_hash, previous_hash, name, data_version,"
                " reason, decision, run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    action,
                    model_hash,
                    current_hash,
                    name,
                    data_version,
                    reason,
                    json.dumps(decision, sort_keys=True, default=str),
                    run_id,
                    _now(),
                ],
            )
            if also is not None:
                also(conn)
            crash_point("deployment:before-commit")
            return current_champion(conn)
