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
        try:
            row = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError as exc:
            raise ProblemError(f"a table pattern is a JSON object: {exc}") from None
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
        self._require(problem)
        pattern = self._prepare(
            problem, input=input, expected=expected, kind=kind, source=source, classes=classes
        )
        self._commit([pattern], exist_ok=False)
        return pattern.digest

    def _prepare(self, problem: str, *, input, expected, kind, source, classes) -> _Pattern:
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
        return _Pattern(problem, payload, suffix, input_kind, origin, str(expected), kind, source)

    def _commit(
        self, patterns: list[_Pattern], *, exist_ok: bool, problems: list[tuple] = ()
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

    def import_folder(self, problem: str, folder: Path, *, kind: str, source: str, classes) -> int:
        """Images under ``folder/<expected label>/``; all get ``kind`` and ``source``.

        All or nothing: every file is checked first, and the patterns are added in one
        transaction. Symbolic links (label folders or files) are refused."""
        self._require(problem)
        folder = Path(folder)
        if folder.is_symlink() or not folder.is_dir():
            raise ProblemError(f"{folder} is not a folder of <label>/<image> files")
        base = folder.resolve()
        prepared = []
        for file in sorted(folder.glob("*/*")):
            for part in (file.parent, file):
                if part.is_symlink():
                    raise ProblemError(
                        f"{part} is a symbolic link; links are not followed (they can point"
                        " outside the folder). Nothing was imported"
                    )
            if not file.resolve().is_relative_to(base):
                raise ProblemError(f"{file} lies outside {base}; nothing was imported")
            if file.is_file():
                try:
                    prepared.append(
                        self._prepare(
                            problem,
                            input=file,
                            expected=file.parent.name,
                            kind=kind,
                            source=source,
                            classes=classes,
                        )
                    )
                except ProblemError as exc:
                    raise ProblemError(f"{exc}; nothing was imported") from None
        return self._commit(prepared, exist_ok=False)

    def import_csv(self, problem: str, csv: Path, *, classes) -> int:
        """Rows with columns expected, kind, source and either file (images, relative to
        the CSV) or the table's feature columns. All or nothing."""
        self._require(problem)
        frame = pl.read_csv(csv)
        needed = {"expected", "kind", "source"} | (
            {"file"} if self.config.data.kind == "images" else set()
        )
        missing = sorted(needed - set(frame.columns))
        if missing:
            raise ProblemError(f"{csv}: missing columns {missing}")
        prepared = []
        for number, row in enumerate(frame.iter_rows(named=True), start=1):
            meta = {k: row.pop(k) for k in ("expected", "kind", "source")}
            try:
                value = _inside(Path(csv).parent, row["file"], csv) if "file" in row else row
                prepared.append(
                    self._prepare(
                        problem,
                        input=value,
                        expected=str(meta["expected"]),
                        kind=meta["kind"],
                        source=meta["source"],
                        classes=classes,
                    )
                )
            except ProblemError as exc:
                raise ProblemError(f"{csv}, row {number}: {exc}; nothing was imported") from None
        return self._commit(prepared, exist_ok=False)

    def read_problem_files(self, folder: Path, *, classes) -> tuple[list[tuple], list[_Pattern]]:
        """Every ``folder/<problem>/problem.toml`` checked against this project (its data
        kind and ``classes``) without writing anything: (problems, patterns), or a
        ProblemError naming the file and the pattern. Run before training, so a shipped
        problem that does not fit the project stops the run before it costs anything."""
        problems, patterns = [], []
        for spec_path in sorted(Path(folder).glob("*/problem.toml")):
            name = spec_path.parent.name
            try:
                spec = tomllib.loads(spec_path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ProblemError(f"{spec_path} is not valid TOML: {exc}") from None
            items = spec.get("patterns", [])
            if not isinstance(items, list):
                raise ProblemError(f"{spec_path}: 'patterns' must be a list of tables")
            min_score = spec.get("min_score")
            if min_score is not None and (
                not isinstance(min_score, (int, float)) or not 0 <= min_score <= 1
            ):
                raise ProblemError(f"{spec_path}: min_score must be within [0, 1]")
            problems.append((name, str(spec.get("description", "")), min_score))
            for number, item in enumerate(items, start=1):
                patterns.append(self._file_pattern(spec_path, name, number, item, classes))
        return problems, patterns

    def _file_pattern(self, spec_path: Path, name: str, number: int, item, classes) -> _Pattern:
        where = f"{spec_path}, pattern {number}"
        wanted = "file" if self.config.data.kind == "images" else "row"
        if not isinstance(item, dict) or wanted not in item:
            raise ProblemError(
                f"{where}: a {self.config.data.kind} project's pattern needs a '{wanted}' key"
                f" (this problem was written for {'images' if wanted == 'row' else 'tables'}?);"
                f" fix or remove {spec_path.parent}"
            )
        missing = sorted({"expected", "kind"} - set(item))
        if missing:
            raise ProblemError(f"{where}: missing {missing}")
        try:
            value = (
                _inside(spec_path.parent, item["file"], spec_path)
                if wanted == "file"
                else item["row"]
            )
            return self._prepare(
                name,
                input=value,
                expected=str(item["expected"]),
                kind=item["kind"],
                source=item.get("source", "contrived"),
                classes=classes,
            )
        except ProblemError as exc:
            raise ProblemError(f"{where}: {exc}; fix or remove {spec_path.parent}") from None

    def sync_from_files(self, folder: Path, *, classes) -> int:
        """Register ``folder/<problem>/problem.toml`` files (idempotent): problems kept in
        the repository alongside their pattern files. All problems and patterns are
        checked first and registered in one transaction: all of them or none."""
        problems, patterns = self.read_problem_files(folder, classes=classes)
        # exist_ok: another run may sync the same files at the same time
        return self._commit(patterns, exist_ok=True, problems=problems)

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


@dataclass(frozen=True)
class _Pattern:
    """A checked pattern, encoded, ready to register."""

    problem: str
    payload: bytes
    suffix: str
    input_kind: str
    origin: str
    expected: str
    kind: str
    source: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()


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
