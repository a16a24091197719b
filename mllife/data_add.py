"""``mllife data add``: new files into the project's data, then a new DVC version.

Everything is checked before anything is copied (a bad file aborts the whole add), and
each file lands by rename, so the data folder never holds half a file. Identical content
already present is skipped; a different file with a taken name gets its hash appended.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from mllife._errors import DataError
from mllife._files import write_atomically
from mllife.config import ProjectConfig
from mllife.data import IMAGE_SUFFIXES
from mllife.versioning import dvc_add, is_dvc_repo

__all__ = ["AddResult", "add_data"]


@dataclass(frozen=True)
class AddResult:
    added: int
    skipped: int
    version: str | None

    def describe(self) -> str:
        version = (
            f"; data version now {self.version}"
            if self.version
            else "; not DVC-tracked (no data.dvc)"
        )
        return f"added {self.added} file(s)/row(s), skipped {self.skipped} already present{version}"


def _image_items(paths: list[Path]) -> list[tuple[str, Path]]:
    """(label, file) for every image under the given files and folders."""
    items = []
    for path in paths:
        if path.is_file():
            items.append((path.parent.name, path))
        elif path.is_dir():
            children = sorted(p for p in path.rglob("*") if p.is_file())
            for child in children:
                if child.suffix.lower() in IMAGE_SUFFIXES:
                    items.append((child.parent.name, child))
        else:
            raise DataError(f"{path} does not exist")
    if not items:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {paths}")
    return items


def _check_image(path: Path) -> bytes:
    from PIL import Image

    payload = path.read_bytes()
    try:
        with Image.open(io.BytesIO(payload)) as image:
            image.verify()
    except Exception as exc:  # PIL raises many types for corrupt files
        raise DataError(f"{path} is not a readable image ({exc}); nothing was added") from None
    return payload


def _place(target: Path, payload: bytes) -> bool:
    """Write ``payload`` at ``target`` (or beside it, hash-suffixed); False if present."""
    digest = hashlib.sha256(payload).hexdigest()
    if target.exists():
        if hashlib.sha256(target.read_bytes()).hexdigest() == digest:
            return False
        target = target.with_name(f"{target.stem}-{digest[:8]}{target.suffix}")
        if target.exists():
            return False
    write_atomically(target, payload)
    return True


def _add_images(config: ProjectConfig, paths: list[Path]) -> tuple[int, int]:
    items = _image_items(paths)
    classes = set(config.data.classes)
    if classes:
        unknown = sorted({label for label, _ in items} - classes)
        if unknown:
            raise DataError(
                f"labels {unknown} (from folder names) are not among data.classes"
                f" {sorted(classes)}; put each image in a <label>/ folder"
            )
    checked = [(label, path, _check_image(path)) for label, path in items]
    added = sum(
        _place(config.data_path / label / path.name, payload) for label, path, payload in checked
    )
    return added, len(checked) - added


def _add_rows(config: ProjectConfig, paths: list[Path]) -> tuple[int, int]:
    import polars as pl

    from mllife.tables import read_table

    current = read_table(config.data_path)
    new = [read_table(p) for p in paths]
    for path, frame in zip(paths, new, strict=True):
        if set(frame.columns) != set(current.columns):
            missing = sorted(set(current.columns) - set(frame.columns))
            extra = sorted(set(frame.columns) - set(current.columns))
            raise DataError(
                f"{path} does not have the table's columns (missing {missing}, extra {extra});"
                " nothing was added"
            )
    incoming = pl.concat([f.select(current.columns) for f in new], how="vertical_relaxed")
    fresh = incoming.join(current, on=current.columns, how="anti", nulls_equal=True)
    combined = pl.concat([current, fresh], how="vertical_relaxed")
    buffer = io.BytesIO()
    if config.data_path.suffix == ".csv":
        combined.write_csv(buffer)
    else:
        combined.write_parquet(buffer)
    write_atomically(config.data_path, buffer.getvalue())
    return fresh.height, incoming.height - fresh.height


def add_data(config: ProjectConfig, paths: list[Path]) -> AddResult:
    """Add images (files, ``<label>/`` folders) or table rows (CSV/Parquet with the same
    columns) to the project's data, then ``dvc add data`` when ``data.dvc`` pins it."""
    if not config.data_path.exists():
        raise DataError(
            f"{config.data_path} does not exist yet: run `mllife data init` or point"
            " [data] path at your data first"
        )
    if config.data.kind == "images":
        added, skipped = _add_images(config, paths)
    else:
        added, skipped = _add_rows(config, paths)
    version = None
    if is_dvc_repo(config.root) and (config.root / "data.dvc").is_file():
        version = dvc_add(config.root, "data", lock_dir=config.state_dir).md5
    return AddResult(added, skipped, version)
