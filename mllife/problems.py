"""The known-problems registry: re-score every model version on every known problem.

A client reports "Problem X" (the model is biased toward people wearing hats). The
engineer registers the problem with 10-15 hand-picked patterns: positive ones that show
the problem, negative ones (controls) that do not, from production or contrived. From
then on every candidate — and every earlier model version that can still be loaded — is
scored on every pattern; results are cached by (model hash, pattern hash), so a re-run
costs only the new pairs. Each pattern keeps a content-addressed copy of its input, so
it survives the original file being deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from PIL import Image

from mllife._errors import ArtifactError, DataError, ProblemError
from mllife._files import write_atomically
from mllife.config import ProjectConfig
from mllife.registry import ModelRef, load_model
from mllife.store import Store

__all__ = ["KINDS", "SOURCES", "ProblemRegistry", "ScoreResult"]

KINDS = ("positive", "negative")
SOURCES = ("production", "contrived")
MAX_IMAGE_PIXELS = 4096 * 4096


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ScoreResult:
    new_pairs: int
    models_scored: int
    #: (model hash, why it could not be scored), e.g. its artifact is gone
    skipped: tuple[tuple[str, str], ...] = ()


def _take(inputs, positions: pl.Series):
    """The inputs at ``positions``: a list of image bytes, or rows of a table."""
    if isinstance(inputs, pl.DataFrame):
        return inputs[positions.to_list()]
    return [inputs[i] for i in positions.to_list()]


class ProblemRegistry:
    """Problems and patterns of one project, kept in its store and ``.mllife/patterns``."""

    def __init__(self, config: ProjectConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.folder = config.state_dir / "patterns"

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
        """Store ``payload`` under its own hash; return (hash, path relative to .mllife)."""
        digest = hashlib.sha256(payload).hexdigest()
        target = self.folder / f"{digest}{suffix}"
        if not target.is_file():
            write_atomically(target, payload)
        return digest, target.relative_to(self.config.state_dir).as_posix()

    def _encode(self, value: Any) -> tuple[bytes, str, str, str]:
        """(payload, suffix, input kind, origin) of an image file or a table row."""
        if self.config.data.kind == "images":
            path = Path(value)
            if not path.is_file():
                raise ProblemError(f"pattern input {path} is not a file")
            payload = path.read_bytes()
            try:
                with Image.open(io.BytesIO(payload)) as image:
                    if image.width * image.height > MAX_IMAGE_PIXELS:
                        raise ProblemError(f"pattern input {path} is too large")
                    image.load()
            except (OSError, SyntaxError, ValueError) as exc:
                raise ProblemError(f"pattern input {path} is not a readable image: {exc}") from exc
            return payload, ".png", "image", str(path)
        row = json.loads(value) if isinstance(value, str) else dict(value)
        if not isinstance(row, dict):
            raise ProblemError(f"a table pattern is a JSON object of feature values: {value!r}")
        return (
            json.dumps(row, sort_keys=True).encode(),
            ".json",
            "row",
            "row " + json.dumps(row, sort_keys=True)[:80],
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
        digest, _ = self._add_pattern(
            problem,
            input=input,
            expected=expected,
            kind=kind,
            source=source,
            classes=classes,
            exist_ok=False,
        )
        return digest

    def _add_pattern(
        self, problem: str, *, input, expected, kind, source, classes, exist_ok: bool
    ) -> tuple[str, bool]:
        """(hash, whether it was added); an existing one is an error unless ``exist_ok``."""
        self._require(problem)
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
        digest = hashlib.sha256(payload).hexdigest()
        with self.store.writing() as conn:
            if conn.execute(
                "SELECT 1 FROM patterns WHERE problem = ? AND pattern_hash = ?", [problem, digest]
            ).fetchone():
                if exist_ok:
                    return digest, False
                raise ProblemError(f"this pattern ({origin}) is already in {problem!r}")
            _, relative = self._keep(payload, suffix)
            conn.execute(
                "INSERT INTO patterns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    problem,
                    digest,
                    relative,
                    input_kind,
                    str(expected),
                    kind,
                    source,
                    origin,
                    _now(),
                ],
            )
        return digest, True

    def import_folder(self, problem: str, folder: Path, *, kind: str, source: str, classes) -> int:
        """Images under ``folder/<expected label>/``; all get ``kind`` and ``source``."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ProblemError(f"{folder} is not a folder of <label>/<image> files")
        added = 0
        for file in sorted(folder.glob("*/*")):
            if file.is_file():
                self.add_pattern(
                    problem,
                    input=file,
                    expected=file.parent.name,
                    kind=kind,
                    source=source,
                    classes=classes,
                )
                added += 1
        return added

    def import_csv(self, problem: str, csv: Path, *, classes) -> int:
        """Rows with columns expected, kind, source and either file (images, relative to
        the CSV) or the table's feature columns."""
        frame = pl.read_csv(csv)
        needed = {"expected", "kind", "source"} | (
            {"file"} if self.config.data.kind == "images" else set()
        )
        missing = sorted(needed - set(frame.columns))
        if missing:
            raise ProblemError(f"{csv}: missing columns {missing}")
        added = 0
        for row in frame.iter_rows(named=True):
            meta = {k: row.pop(k) for k in ("expected", "kind", "source")}
            value = _inside(Path(csv).parent, row["file"], csv) if "file" in row else row
            self.add_pattern(
                problem,
                input=value,
                expected=str(meta["expected"]),
                kind=meta["kind"],
                source=meta["source"],
                classes=classes,
            )
            added += 1
        return added

    def sync_from_files(self, folder: Path, *, classes) -> int:
        """Register ``folder/<problem>/problem.toml`` files (idempotent): problems kept in
        the repository alongside their pattern files."""
        added = 0
        for spec_path in sorted(Path(folder).glob("*/problem.toml")):
            spec = tomllib.loads(spec_path.read_text())
            name = spec_path.parent.name
            self.add_problem(
                name,
                description=spec.get("description", ""),
                min_score=spec.get("min_score"),
                exist_ok=True,
            )
            known = set(self.patterns(name)["pattern_hash"].to_list())
            for item in spec.get("patterns", []):
                if "file" in item:
                    value = _inside(spec_path.parent, item["file"], spec_path)
                else:
                    value = item["row"]
                payload, _, _, _ = self._encode(value)
                if hashlib.sha256(payload).hexdigest() in known:
                    continue
                _, new = self._add_pattern(
                    name,
                    input=value,
                    expected=str(item["expected"]),
                    kind=item["kind"],
                    source=item.get("source", "contrived"),
                    classes=classes,
                    exist_ok=True,  # another run may sync the same files at the same time
                )
                added += new
        return added

    # -- scoring -----------------------------------------------------------------------

    def _inputs(self, rows: pl.DataFrame):
        paths = [self.config.state_dir / p for p in rows["input_path"].to_list()]
        if self.config.data.kind == "images":
            return [p.read_bytes() for p in paths]
        return pl.DataFrame([json.loads(p.read_text()) for p in paths])

    def score(self, models: list[ModelRef]) -> ScoreResult:
        """Score each model on every pattern it has no result for yet."""
        patterns = self.store.query(
            "SELECT DISTINCT pattern_hash, input_path, expected FROM patterns"
        )
        if patterns.height == 0 or not models:
            return ScoreResult(0, 0)
        done = self.store.query(
            "SELECT model_hash, pattern_hash FROM pattern_results WHERE model_hash IN"
            " (SELECT unnest(?))",
            [[m.model_hash for m in models]],
        )
        scored_by_model: dict[str, set[str]] = {}
        for model_hash, pattern_hash in done.iter_rows():
            scored_by_model.setdefault(model_hash, set()).add(pattern_hash)
        patterns = patterns.with_row_index("_i")
        inputs = None  # every pattern's input, read once and only if some pair is new
        new_pairs, scored, skipped = 0, 0, []
        for ref in models:
            todo = patterns.filter(
                ~pl.col("pattern_hash").is_in(list(scored_by_model.get(ref.model_hash, ())))
            )
            if todo.height == 0:
                continue
            if inputs is None:
                inputs = self._inputs(patterns)
            try:
                model = load_model(ref, artifacts_dir=self.config.artifacts_dir, store=self.store)
            except ArtifactError as exc:
                skipped.append((ref.model_hash, str(exc)))
                continue
            try:
                predicted = [str(p) for p in model.predict(_take(inputs, todo["_i"]))]
            except (DataError, ValueError) as exc:
                skipped.append((ref.model_hash, f"cannot predict on the patterns: {exc}"))
                continue
            now = _now()
            with self.store.writing() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO pattern_results VALUES (?, ?, ?, ?, ?)",
                    [
                        [ref.model_hash, h, p, p == e, now]
                        for h, e, p in zip(
                            todo["pattern_hash"], todo["expected"], predicted, strict=True
                        )
                    ],
                )
            new_pairs += todo.height
            scored += 1
        return ScoreResult(new_pairs, scored, tuple(skipped))

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


def _inside(folder: Path, name: str, declared_in: Path) -> Path:
    """``folder/name``, refused when it leaves ``folder`` (``..``, an absolute path, or a
    symlink pointing elsewhere): a problem file must not read arbitrary files."""
    base = Path(folder).resolve()
    target = (base / str(name)).resolve()
    if not target.is_relative_to(base):
        raise ProblemError(
            f"{declared_in}: pattern file {name!r} lies outside {base}; keep pattern files"
            " in the problem's own folder"
        )
    return target
