"""Importing known-problem patterns in bulk: a folder of ``<label>/<image>`` files, a
CSV, or the repository's ``problems/<name>/problem.toml`` files. Every import checks
everything first and registers in one transaction: all of it or none."""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl

from mllife._errors import ProblemError
from mllife.problems.patterns import Pattern, inside

__all__ = ["PatternImports"]


class PatternImports:
    """The bulk imports of :class:`~mllife.problems.registry.ProblemRegistry` (a mixin:
    it uses the registry's ``_require``, ``_prepare`` and ``_commit``)."""

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
        csv = Path(csv)
        if not csv.is_file():
            raise ProblemError(
                f"{csv} is neither a folder of <label>/<image> nor a CSV file of patterns"
            )
        try:
            frame = pl.read_csv(csv)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise ProblemError(f"cannot read {csv} as CSV: {exc}") from None
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
                value = inside(Path(csv).parent, row["file"], csv) if "file" in row else row
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

    def read_problem_files(self, folder: Path, *, classes) -> tuple[list[tuple], list[Pattern]]:
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
            patterns += self._behaviour_patterns(spec_path, name, spec, classes)
        return problems, patterns

    def _behaviour_patterns(self, spec_path: Path, name: str, spec: dict, classes) -> list:
        """The patterns of a text problem's behaviour tests (``mllife.problems.behaviour``)."""
        from dataclasses import replace

        from mllife.data.contract_file import load_contract
        from mllife.problems.behaviour import DIRECTIONAL, expand_behaviour

        if not any(spec.get(k) for k in ("templates", "invariance", "directional")):
            return []
        where = str(spec_path)
        columns = load_contract(None, self.config.data, self.config.schema_path).columns
        texts = [n for n, c in columns.items() if c.dtype == "text"]
        if len(texts) != 1 or len(columns) != 1:
            raise ProblemError(
                f"{where}: templates, invariance and directional tests need a text project"
                f" (one text column; this project's columns are {sorted(columns)[:10]})"
            )
        out = []
        for item in expand_behaviour(spec, column=texts[0], where=where):
            pattern = self._file_pattern(spec_path, name, len(out) + 1, item, classes)
            if "original" in item:
                label = item["must_not_raise"]
                if label not in set(map(str, classes)):
                    raise ProblemError(f"{where}: must_not_raise {label!r} is not a class")
                original = out[-1]  # expanded just before its perturbed copy
                pattern = replace(pattern, expected=f"{DIRECTIONAL}{label} @ {original.digest}")
            out.append(pattern)
        return out

    def _file_pattern(self, spec_path: Path, name: str, number: int, item, classes) -> Pattern:
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
                inside(spec_path.parent, item["file"], spec_path)
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
