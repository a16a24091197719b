"""``mllife data add``: new files into the project's data, then a new DVC version.

Everything is checked before anything is copied (a bad file aborts the whole add), and
each file lands by rename, so the data folder never holds half a file. Identical content
already present is skipped; a different file with a taken name gets its hash appended.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mllife._errors import DataError
from mllife.config.project import ProjectConfig
from mllife.data.decode import ImageFileError, open_image
from mllife.data.images import IMAGE_SUFFIXES
from mllife.storage.dvc import dvc_add, is_dvc_repo
from mllife.storage.files import write_atomically

__all__ = ["AddResult", "add_data"]

#: a class folder's name: no leading dot (hidden, "." or ".."), no separator, no NUL
_LABEL = re.compile(r"\A[^./\\\x00][^/\\\x00]*\Z")


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


def _refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise DataError(
            f"{path} is a symbolic link; links are not followed (they can point anywhere):"
            " copy the file itself. Nothing was added"
        )


def _image_items(paths: list[Path]) -> list[tuple[str, Path]]:
    """(label, file) for every image under the given files and folders; a file's label
    is the name of the folder it is in. Symbolic links, to files or folders, are
    refused: they could bring in anything the user running this can read."""
    items = []
    for given in paths:
        _refuse_link(given)
        path = given.resolve()
        if path.is_file():
            items.append((path.parent.name, path))
        elif path.is_dir():
            for folder, dirs, files in os.walk(path):
                for name in dirs + files:
                    _refuse_link(Path(folder) / name)
                for name in sorted(files):
                    child = Path(folder) / name
                    if child.suffix.lower() in IMAGE_SUFFIXES:
                        items.append((child.parent.name, child))
        else:
            raise DataError(f"{given} does not exist")
    if not items:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {paths}")
    return items


def _known_classes(config: ProjectConfig) -> set[str]:
    """The declared classes, else the class folders the data holds now."""
    if config.data.classes:
        return set(config.data.classes)
    return {p.name for p in config.data_path.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _check_labels(config: ProjectConfig, items: list[tuple[str, Path]], new_classes: bool):
    for label, path in items:
        if not _LABEL.match(label):
            raise DataError(
                f"{path}: its folder name {label!r} is not a usable class name (no leading"
                " dot, no path separators); put each image in a <label>/ folder."
                " Nothing was added"
            )
    known = _known_classes(config)
    unknown = sorted({label for label, _ in items} - known)
    if not unknown:
        return
    if config.data.classes:
        raise DataError(
            f"labels {unknown} (from folder names) are not among data.classes"
            f" {sorted(known)}; put each image in a <label>/ folder, or add the class to"
            " [data] classes in mllife.toml. Nothing was added"
        )
    if not new_classes:
        example = next(path for label, path in items if label == unknown[0])
        raise DataError(
            f"labels {unknown} (from folder names, e.g. {example}) are not classes of this"
            f" project (it has {sorted(known)}). A stray folder would silently make a new"
            " class: put each image in the folder of its class, or pass --new-class to add"
            " the class on purpose. Nothing was added"
        )


def _check_image(path: Path, *, max_pixels: int) -> bytes:
    """The file's bytes, once they decode as an image within the pixel limit."""
    payload = path.read_bytes()
    try:
        open_image(payload, max_pixels=max_pixels, what=str(path), setting="data.max_image_pixels")
    except ImageFileError as exc:
        raise DataError(f"{exc}: fix or remove it. Nothing was added") from None
    return payload


def _target(config: ProjectConfig, label: str, name: str) -> Path:
    """Where a file lands: inside its class folder, or a DataError."""
    root = config.data_path.resolve()
    folder = root / label
    if folder.is_symlink() or (folder / name).is_symlink():
        raise DataError(f"{folder / name} is a symbolic link in the data folder; not writing")
    target = (folder / name).resolve()
    if target.parent != folder.resolve() or folder.resolve().parent != root:
        raise DataError(f"{name!r} with label {label!r} would land outside {root}; not writing")
    return target


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


def _add_images(
    config: ProjectConfig, paths: list[Path], *, new_classes: bool = False
) -> tuple[int, int]:
    items = _image_items(paths)
    _check_labels(config, items, new_classes)
    limit = config.data.max_image_pixels
    checked = [
        (_target(config, label, path.name), _check_image(path, max_pixels=limit))
        for label, path in items
    ]
    # Everything is checked; now the copies. A failure here (a full disk) removes the
    # files this add already wrote, so the data folder is as it was.
    written: list[Path] = []
    try:
        for target, payload in checked:
            if _place(target, payload):
                written.append(target)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return len(written), len(checked) - len(written)


def _add_rows(config: ProjectConfig, paths: list[Path]) -> tuple[int, int]:
    import polars as pl

    from mllife.data.tables import read_table

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
    elif config.data_path.suffix in (".jsonl", ".ndjson"):
        combined.write_ndjson(buffer)
    else:
        combined.write_parquet(buffer)
    write_atomically(config.data_path, buffer.getvalue())
    return fresh.height, incoming.height - fresh.height


def add_data(config: ProjectConfig, paths: list[Path], *, new_classes: bool = False) -> AddResult:
    """Add images (files, ``<label>/`` folders) or table rows (CSV/Parquet with the same
    columns) to the project's data, then ``dvc add data`` when ``data.dvc`` pins it.

    An image's label is its folder's name and must be a class the project has (declared
    in ``data.classes``, else a class folder already in the data) unless ``new_classes``.
    """
    if not config.data_path.exists():
        raise DataError(
            f"{config.data_path} does not exist yet: run `mllife data init` or point"
            " [data] path at your data first"
        )
    if config.data.kind == "images":
        added, skipped = _add_images(config, paths, new_classes=new_classes)
    else:
        added, skipped = _add_rows(config, paths)
    version = None
    if is_dvc_repo(config.root) and (config.root / "data.dvc").is_file():
        version = dvc_add(config.root, "data", lock_dir=config.state_dir).md5
    return AddResult(added, skipped, version)
