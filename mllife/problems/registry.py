"""The known-problems registry: re-score every model version on every known problem.

A client reports "Problem X" (the model is biased toward people wearing hats). The
engineer registers the problem with 10-15 hand-picked patterns: positive ones that show
the problem, negative ones (controls) that do not, from production or contrived. From
then on every candidate — and every earlier model version that can still be loaded — is
scored on every pattern; results are cached by (model hash, pattern hash), so a re-run
costs only the new pairs. Each pattern keeps a content-addressed copy of its input, so
it survives the original file being deleted: under ``artifacts/patterns/``, so the run's
``dvc add artifacts/`` pins it with the models (earlier versions kept them in
``.mllife/patterns/``; their recorded paths still resolve).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from mllife._errors import ProblemError
from mllife.config.project import ProjectConfig
from mllife.data.contract_file import feature_names
from mllife.data.decode import ImageFileError, open_image
from mllife.problems.imports import PatternImports
from mllife.problems.patterns import Pattern
from mllife.problems.versions import ScoreResult, VersionScoring
from mllife.storage.files import write_atomically
from mllife.storage.store import Store

__all__ = ["KINDS", "SOURCES", "ProblemRegistry", "ScoreResult"]

KINDS = ("positive", "negative")
#: where a pattern came from: served traffic, made up by a person, or a validation row in
#: a weak slice (``mllife problems add --from-slice``)
SOURCES = ("production", "contrived", "slice")
MAX_IMAGE_PIXELS = 4096 * 4096


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ProblemRegistry(PatternImports, VersionScoring):
    """Problems and patterns of one project, kept in its store and ``artifacts/patterns``."""

    def __init__(self, config: ProjectConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.folder = config.artifacts_dir / "patterns"
        self._features: list[str] | None = None

    # -- problems ----------------------------------------------------------------------

    def add_problem(
        self,
        name: str,
        *,
        description: str,
        min_score: float | None = None,
        exist_ok: bool = False,
    ) -> None:
        """``exist_ok``: an existing problem of that name is left as it is."""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ProblemError(f"problem name {name!r}: use letters, digits, '-' and '_'")
        if min_score is not None and not 0 <= min_score <= 1:
            raise ProblemError(f"min_score must be within [0, 1], got {min_score}")
        with self.store.writing() as conn:
            # Checked inside the write transaction: two runs syncing the same problem
            # files at once cannot both insert it.
            if conn.execute("SELECT 1 FROM problems WHERE name = ?", [name]).fetchone():
                if exist_ok:
                    return
                raise ProblemError(f"problem {name!r} already exists")
            conn.execute(
                "INSERT INTO problems VALUES (?, ?, ?, ?)", [name, description, min_score, _now()]
            )

    def problems(self) -> pl.DataFrame:
        return self.store.query(
            "SELECT p.name, p.description, p.min_score,"
            " count(t.pattern_hash) AS patterns,"
            " count(t.pattern_hash) FILTER (WHERE t.kind = 'positive') AS positive,"
            " count(t.pattern_hash) FILTER (WHERE t.kind = 'negative') AS negative"
            " FROM problems p LEFT JOIN patterns t ON t.problem = p.name"
            " GROUP BY ALL ORDER BY p.name"
        )

    def patterns(self, problem: str | None = None) -> pl.DataFrame:
        if problem is None:
            return self.store.query("SELECT * FROM patterns ORDER BY problem, created_at")
        self._require(problem)
        return self.store.query(
            "SELECT * FROM patterns WHERE problem = ? ORDER BY created_at", [problem]
        )

    def _require(self, problem: str) -> None:
        if self.store.query("SELECT name FROM problems WHERE name = ?", [problem]).height == 0:
            known = self.store.query("SELECT name FROM problems")["name"].to_list()
            raise ProblemError(f"no problem named {problem!r}; known: {sorted(known)}")

    def remove(self, problem: str, *, force: bool = False) -> int:
        """Remove a problem and its patterns. One with results needs ``force``."""
        self._require(problem)
        scored = self.store.query(
            "SELECT count(*) AS n FROM pattern_results r JOIN patterns p USING (pattern_hash)"
            " WHERE p.problem = ?",
            [problem],
        )["n"][0]
        if scored and not force:
            raise ProblemError(
                f"problem {problem!r} has {scored} results across model versions (its"
                " history); pass --force to remove it and its patterns anyway"
            )
        with self.store.writing() as conn:
            removed = conn.execute(
                "SELECT count(*) FROM patterns WHERE problem = ?", [problem]
            ).fetchone()[0]
            conn.execute("DELETE FROM patterns WHERE problem = ?", [problem])
            conn.execute("DELETE FROM problems WHERE name = ?", [problem])
        return int(removed)

    # -- patterns ----------------------------------------------------------------------

    def _keep(self, payload: bytes, suffix: str) -> tuple[str, str]:
        """Store ``payload`` under its own hash; return (hash, path relative to the shared
        folder, where every recorded pattern path is read from)."""
        digest = hashlib.sha256(payload).hexdigest()
        target = self.folder / f"{digest}{suffix}"
        if not target.is_file():
            write_atomically(target, payload)
        return digest, Path(os.path.relpath(target, self.config.shared_dir)).as_posix()

    def _encode(self, value: Any) -> tuple[bytes, str, str, str]:
        """(payload, suffix, input kind, origin) of an image file or a table row."""
        if self.config.data.kind == "images":
            path = Path(value)
            if not path.is_file():
                raise ProblemError(f"pattern input {path} is not a file")
            payload = path.read_bytes()
            try:
                open_image(payload, max_pixels=MAX_IMAGE_PIXELS, what=f"pattern input {path}")
            except ImageFileError as exc:
                raise ProblemError(str(exc)) from None
            return payload, ".png", "image", str(path)
        try:
            row = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError as exc:
            raise ProblemError(f"a table pattern is a JSON object: {exc}") from None
        if not isinstance(row, dict):
            raise ProblemError(f"a table pattern is a JSON object of feature values: {value!r}")
        self._check_row_columns(row)
        return (
            json.dumps(row, sort_keys=True).encode(),
            ".json",
            "row",
            "row " + json.dumps(row, sort_keys=True)[:80],
        )

    def _check_row_columns(self, row: dict) -> None:
        """A row pattern names exactly the project's feature columns."""
        if self._features is None:
            self._features = feature_names(self.config)
        missing = sorted(set(self._features) - set(row))
        extra = sorted(set(row) - set(self._features))
        if missing or extra:
            parts = [f"lacks {missing}" if missing else "", f"has unknown {extra}" if extra else ""]
            raise ProblemError(
                f"a row pattern must give every feature column of the project and no other:"
                f" it {' and '.join(p for p in parts if p)}; the feature columns are"
                f" {self._features[:30]}"
            )

    def add_pattern(
        self,
        problem: str,
        *,
        input: Any,
        expected: str,
        kind: str,
        source: str,
        classes: list[str] | tuple[str, ...],
    ) -> str:
        """Add one pattern (an image file, or a row as dict/JSON); return its hash."""
        self._require(problem)
        pattern = self._prepare(
            problem, input=input, expected=expected, kind=kind, source=source, classes=classes
        )
        self._commit([pattern], exist_ok=False)
        return pattern.digest

    def _prepare(self, problem: str, *, input, expected, kind, source, classes) -> Pattern:
        """A checked, encoded pattern; nothing is written."""
        if kind not in KINDS:
            raise ProblemError(f"kind must be one of {KINDS}, got {kind!r}")
        if source not in SOURCES:
            raise ProblemError(f"source must be one of {SOURCES}, got {source!r}")
        if str(expected) not in set(map(str, classes)):
            raise ProblemError(
                f"expected label {expected!r} is not a known class;"
                f" classes are {sorted(map(str, classes))}"
            )
        payload, suffix, input_kind, origin = self._encode(input)
        return Pattern(problem, payload, suffix, input_kind, origin, str(expected), kind, source)

    def _commit(
        self, patterns: list[Pattern], *, exist_ok: bool, problems: list[tuple] = ()
    ) -> int:
        """Register ``problems`` (name, description, min_score; existing ones kept) and
        ``patterns`` in one store transaction: all of them or none. A pattern already
        present is an error (nothing added) unless ``exist_ok``. Returns patterns added."""
        seen: set[tuple[str, str]] = set()
        for pattern in patterns:
            if (pattern.problem, pattern.digest) in seen and not exist_ok:
                raise ProblemError(
                    f"{pattern.origin} appears twice in this import for {pattern.problem!r};"
                    " nothing was added"
                )
            seen.add((pattern.problem, pattern.digest))
        # content-addressed copies first: an orphaned copy (a failed commit) is harmless
        kept = {p.digest: self._keep(p.payload, p.suffix)[1] for p in patterns}
        added = 0
        with self.store.writing() as conn:
            for name, description, min_score in problems:
                if not conn.execute("SELECT 1 FROM problems WHERE name = ?", [name]).fetchone():
                    conn.execute(
                        "INSERT INTO problems VALUES (?, ?, ?, ?)",
                        [name, description, min_score, _now()],
                    )
            inserted: set[tuple[str, str]] = set()
            for p in patterns:
                exists = (p.problem, p.digest) in inserted or conn.execute(
                    "SELECT 1 FROM patterns WHERE problem = ? AND pattern_hash = ?",
                    [p.problem, p.digest],
                ).fetchone()
                if exists:
                    if exist_ok:
                        continue
                    # raising inside the transaction rolls back every earlier insert
                    raise ProblemError(
                        f"this pattern ({p.origin}) is already in {p.problem!r}; nothing was added"
                    )
                conn.execute(
                    "INSERT INTO patterns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [p.problem, p.digest, kept[p.digest], p.input_kind, p.expected, p.kind,
                     p.source, p.origin, _now()],
                )  # fmt: skip
                inserted.add((p.problem, p.digest))
                added += 1
        return added

    def history(self, problem: str | None = None) -> pl.DataFrame:
        """Per problem and model version: accuracy on positive, negative and all patterns."""
        if problem:
            self._require(problem)
        where = "WHERE t.problem = ?" if problem else ""
        return self.store.query(
            "SELECT t.problem, m.name, r.model_hash, m.created_at,"
            " avg(r.correct::INT) FILTER (WHERE t.kind = 'positive') AS positive_accuracy,"
            " avg(r.correct::INT) FILTER (WHERE t.kind = 'negative') AS negative_accuracy,"
            " avg(r.correct::INT) AS accuracy, count(*) AS patterns"
            " FROM pattern_results r JOIN patterns t USING (pattern_hash)"
            " JOIN models m USING (model_hash) "
            + where
            + " GROUP BY ALL ORDER BY t.problem, m.created_at",
            [problem] if problem else [],
        )

    def scores_of(self, model_hash: str) -> dict[str, float]:
        frame = self.store.query(
            "SELECT t.problem, avg(r.correct::INT) AS accuracy FROM pattern_results r"
            " JOIN patterns t USING (pattern_hash) WHERE r.model_hash = ? GROUP BY ALL",
            [model_hash],
        )
        return dict(zip(frame["problem"], frame["accuracy"], strict=True))

    def flips(self, problem: str, model_a: str, model_b: str) -> pl.DataFrame:
        """Patterns of ``problem`` whose verdict differs between two model versions."""
        self._require(problem)
        a = self.store.resolve_model(model_a)["model_hash"]
        b = self.store.resolve_model(model_b)["model_hash"]
        return self.store.query(
            "SELECT t.pattern_hash, t.origin, t.kind, t.expected, ra.predicted AS predicted_a,"
            " rb.predicted AS predicted_b,"
            " CASE WHEN rb.correct THEN 'fixed' ELSE 'broken' END AS change"
            " FROM patterns t JOIN pattern_results ra ON ra.pattern_hash = t.pattern_hash"
            " AND ra.model_hash = ? JOIN pattern_results rb ON rb.pattern_hash ="
            " t.pattern_hash AND rb.model_hash = ? WHERE t.problem = ?"
            " AND ra.correct <> rb.correct ORDER BY change, t.origin",
            [a, b, problem],
        )
