"""Served inputs into the repository's known problems (``problems/<name>/problem.toml``).

The review desk adds a production example to a known problem the way a person would by
hand: an image is written beside the problem's file, named by its SHA-256; a table row
goes into the file itself. The next ``mllife run`` registers it (the problem files are
part of the problems' version, so the problem scores are stale) and re-scores every
stored model version on it. Edits are serialised by a lock and checked by the same
reader the run uses before anything is left in place: a problem file the desk wrote
never stops a run.
"""

from __future__ import annotations

import hashlib
import io
import tomllib
from dataclasses import dataclass

import tomlkit
from PIL import Image

from mllife._errors import ProblemError
from mllife.config.project import ProjectConfig
from mllife.problems.registry import KINDS, ProblemRegistry
from mllife.storage.files import write_atomically
from mllife.storage.locks import file_lock
from mllife.storage.store import Store

__all__ = ["ServedPattern", "add_served_patterns", "problem_names"]

LOCK_TIMEOUT_S = 30.0
_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}


@dataclass(frozen=True)
class ServedPattern:
    """One served input to add: image bytes or a table row, its right label, and whether
    it shows the problem (positive) or is a look-alike control (negative)."""

    prediction_id: str
    expected: str
    kind: str
    image: bytes | None = None
    row: dict | None = None
    #: "production" (served), or "slice" (a validation row slice discovery found)
    source: str = "production"


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or not name.replace("_", "").replace("-", "").isalnum():
        raise ProblemError(f"problem name {name!r}: use 1-64 letters, digits, '-' and '_'")


def problem_names(config: ProjectConfig, store: Store) -> list[str]:
    """Known problems: the repository's problem files and the store's registry."""
    names = set()
    if config.problems_dir.is_dir():
        names |= {p.parent.name for p in config.problems_dir.glob("*/problem.toml")}
    names |= set(store.query("SELECT name FROM problems")["name"].to_list())
    return sorted(names)


def _entry(pattern: ServedPattern, folder) -> tuple[dict, tuple[str, bytes] | None]:
    """The problem file's entry and the image file to write beside it (or None)."""
    if pattern.kind not in KINDS:
        raise ProblemError(f"kind must be one of {KINDS}, got {pattern.kind!r}")
    entry = {"expected": pattern.expected, "kind": pattern.kind, "source": pattern.source}
    if pattern.image is not None:
        try:
            kind = Image.open(io.BytesIO(pattern.image)).format
        except Exception as exc:  # PIL raises several kinds for bytes that are no image
            raise ProblemError(
                f"prediction {pattern.prediction_id}: its kept input is not an image ({exc})"
            ) from None
        name = hashlib.sha256(pattern.image).hexdigest() + _SUFFIXES.get(kind or "", ".img")
        return {"file": name, **entry}, (name, pattern.image)
    if any(value is None for value in pattern.row.values()):
        missing = sorted(k for k, v in pattern.row.items() if v is None)
        raise ProblemError(
            f"prediction {pattern.prediction_id}: the row has no value for {missing[:10]};"
            " a problem file cannot hold a missing value (TOML has no null)"
        )
    row = tomlkit.inline_table()
    row.update(pattern.row)
    return {"row": row, **entry}, None


def _same(a: dict, b: dict) -> bool:
    key = "file" if "file" in a else "row"
    return key in b and a[key] == b[key]


def add_served_patterns(
    config: ProjectConfig,
    store: Store,
    problem: str,
    patterns: list[ServedPattern],
    *,
    classes: list[str],
    description: str | None = None,
) -> int:
    """Add ``patterns`` to ``problem`` (created with ``description`` when new); return
    how many were new (one already in the problem is not added twice)."""
    _check_name(problem)
    registry = ProblemRegistry(config, store)
    folder = config.problems_dir / problem
    spec_path = folder / "problem.toml"
    with file_lock(config.state_dir / "locks" / "problems.lock", timeout=LOCK_TIMEOUT_S,
                   what="adding patterns to a known problem"):  # fmt: skip
        before = spec_path.read_text() if spec_path.is_file() else None
        if before is not None:
            document = tomlkit.parse(before)
        else:
            registered = store.query("SELECT description FROM problems WHERE name = ?", [problem])
            if registered.height == 0 and not (description or "").strip():
                raise ProblemError(f"problem {problem!r} is new: give it a description")
            document = tomlkit.document()
            document["description"] = (
                registered["description"][0] if registered.height else description.strip()
            )
        existing = tomllib.loads(tomlkit.dumps(document)).get("patterns", [])
        table = document.setdefault("patterns", tomlkit.aot())
        files, added = [], 0
        for pattern in patterns:
            if pattern.expected not in classes:
                raise ProblemError(
                    f"expected label {pattern.expected!r} is not one of {sorted(classes)}"
                )
            entry, image = _entry(pattern, folder)
            if any(_same(entry, e) for e in existing):
                continue
            existing.append({k: (dict(v) if k == "row" else v) for k, v in entry.items()})
            table.append(tomlkit.item(entry))
            if image is not None:
                files.append(image)
            added += 1
        if not added:
            return 0
        written = []
        try:
            for name, payload in files:
                if not (folder / name).is_file():
                    write_atomically(folder / name, payload)
                    written.append(folder / name)
            write_atomically(spec_path, tomlkit.dumps(document).encode())
            # what the run will read: a file it would refuse is never left in place
            registry.read_problem_files(config.problems_dir, classes=classes)
        except BaseException:
            if before is None:
                spec_path.unlink(missing_ok=True)
            else:
                write_atomically(spec_path, before.encode())
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return added
