"""Raw image folders into polars manifests, and cleaning with a report of every drop."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mllife._errors import DataError
from mllife.data.decode import DEFAULT_MAX_PIXELS, ImageFileError, open_image
from mllife.data.stat_cache import StatCache, walk_files

__all__ = [
    "CleanData",
    "RawData",
    "IMAGE_SUFFIXES",
    "MANIFEST_SCHEMA",
    "clean_images",
    "infer_classes",
    "scan_image_folder",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
MANIFEST_SCHEMA = {
    "path": pl.String,
    "label": pl.String,
    "sha256": pl.String,
    "size_bytes": pl.Int64,
    "width": pl.Int64,
    "height": pl.Int64,
    "mode": pl.String,
    "error": pl.String,
}
DROPPED_SCHEMA = {"path": pl.String, "label": pl.String, "sha256": pl.String, "reason": pl.String}


@dataclass(frozen=True)
class RawData:
    """The raw manifest and the data version (DVC's hash of the folder) it was read at."""

    manifest: pl.DataFrame
    data_version: str
    source: str
    #: tables: the feature contract (name -> ColumnConfig) and where it came from
    columns: dict | None = None
    contract_source: str = ""
    #: tables: False while the contract is inferred and not yet in the schema file
    contract_frozen: bool = True
    #: tables: doubts about the inferred contract, in words (numeric-looking text columns)
    contract_findings: tuple[str, ...] = ()


@dataclass(frozen=True)
class CleanData:
    rows: pl.DataFrame
    dropped: pl.DataFrame  # path, label, sha256, reason
    data_version: str
    columns: dict | None = None
    #: the classes the data may hold (declared, or read off the raw data)
    classes: tuple[str, ...] = ()

    @property
    def content_version(self) -> str:
        """Hash of the kept contents and labels, independent of file names and order."""
        pairs = sorted(
            zip(self.rows["sha256"].to_list(), self.rows["label"].to_list(), strict=True)
        )
        return hashlib.sha256("\n".join(f"{h}\t{lbl}" for h, lbl in pairs).encode()).hexdigest()


def _missing_folder_error(folder: Path) -> DataError:
    return DataError(
        f"data folder {folder} does not exist. Run `mllife data init` to write the default"
        " digits data there, or set [data] path in mllife.toml to your image folder"
        " (one subfolder per class)."
    )


def infer_classes(folder: Path) -> tuple[str, ...]:
    """Class names from the subfolders of an image folder, sorted."""
    if not folder.is_dir():
        raise _missing_folder_error(folder)
    return tuple(
        sorted(
            p.name
            for p in folder.iterdir()
            if p.is_dir() and not p.is_symlink() and not _hidden(p)  # a linked folder: no class
        )
    )


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _describe_image(
    payload: bytes, max_pixels: int
) -> tuple[int | None, int | None, str | None, str | None]:
    """(width, height, mode, error) of an encoded image; decodes fully to catch corruption
    (through ``mllife.data.decode``: the size checked from the header first, EXIF
    orientation applied, so width and height are as the image is seen)."""
    if not payload:
        return None, None, None, "empty file (0 bytes)"
    try:
        image = open_image(payload, max_pixels=max_pixels, what="the file")
    except ImageFileError as exc:
        # Recorded in the manifest as this file's error; cleaning drops and reports it.
        reason = str(exc).removeprefix("the file ").removeprefix("is not a readable image: ")
        return None, None, None, "unreadable image: " + reason.removeprefix("is ")
    return image.width, image.height, image.mode, None


def scan_image_folder(
    folder: Path,
    *,
    root: Path,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    cache: Path | None = None,
) -> pl.DataFrame:
    """Manifest of every image file under ``folder/<class>/``.

    One row per file: ``path`` (relative to ``root``), ``label`` (its folder; null for a
    file not inside a class folder), ``sha256`` of the bytes, ``size_bytes``, and the
    decoded ``width``/``height``/``mode`` — or an ``error`` for a file that cannot be read.
    With ``cache`` (a stat cache file, see ``mllife.data.stat_cache``) a file whose
    inode, size and mtime are unchanged since the last scan is not read again.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise _missing_folder_error(folder)
    stats = StatCache(cache, MANIFEST_SCHEMA)
    inside_root = folder.resolve().is_relative_to(Path(root).resolve())
    rows: list[tuple] = []
    keys: list[tuple] = []
    for parts, stat in walk_files(folder):
        if Path(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        file = folder.joinpath(*parts)
        shown = file.relative_to(root).as_posix() if inside_root else str(file)
        key = StatCache.key(stat, max_pixels)
        row = stats.get(shown, key)
        if row is None:
            row = _describe_file(file, shown, parts, max_pixels)
        rows.append(row)
        keys.append(key)
    if not rows:
        raise DataError(
            f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {folder}; expected"
            " one subfolder per class holding image files"
        )
    stats.save(rows, keys)
    return pl.DataFrame(rows, schema=MANIFEST_SCHEMA, orient="row")


def _describe_file(file: Path, shown: str, parts: tuple[str, ...], max_pixels: int) -> tuple:
    label = parts[0] if len(parts) == 2 else None
    payload = file.read_bytes()
    width, height, mode, error = _describe_image(payload, max_pixels)
    if label is None and error is None:
        error = "not inside a class folder (expected <data>/<class>/<file>)"
    digest = hashlib.sha256(payload).hexdigest()
    return shown, label, digest, len(payload), width, height, mode, error


def drop_conflicting_labels(rest: pl.DataFrame, drop, *, what: str) -> pl.DataFrame:
    """``rest`` without the items whose identical content (``sha256``) carries more than
    one label; those go to ``drop`` with the labels they carry."""
    labels_per_hash = rest.group_by("sha256").agg(pl.col("label").unique().sort().alias("labels"))
    conflicting = labels_per_hash.filter(pl.col("labels").list.len() > 1)
    if conflicting.height:
        bad = rest.join(conflicting, on="sha256")
        reason = f"conflicting labels for identical {what}: "
        drop(bad, pl.lit(reason) + pl.col("labels").list.join(", "))
        rest = rest.join(conflicting.select("sha256"), on="sha256", how="anti")
    return rest


def clean_images(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a raw manifest into rows fit for training and rows dropped, with reasons.

    Dropped: unreadable files, missing labels, content that appears under two or more
    labels (all copies: nobody knows which label is right), and exact duplicates of the
    same content and label (all but the first path are dropped).
    """
    dropped: list[pl.DataFrame] = []

    def drop(rows: pl.DataFrame, reason: pl.Expr) -> None:
        if rows.height:
            dropped.append(rows.select("path", "label", "sha256", reason.alias("reason")))

    broken = raw.filter(pl.col("error").is_not_null())
    drop(broken, pl.col("error"))
    rest = raw.filter(pl.col("error").is_null())

    unlabelled = rest.filter(pl.col("label").is_null())
    drop(unlabelled, pl.lit("missing label"))
    rest = rest.filter(pl.col("label").is_not_null())

    rest = drop_conflicting_labels(rest, drop, what="content")

    rest = rest.sort("path")
    first = rest.group_by("sha256", maintain_order=True).agg(pl.col("path").first().alias("kept"))
    with_first = rest.join(first, on="sha256")
    duplicates = with_first.filter(pl.col("path") != pl.col("kept"))
    drop(duplicates, pl.lit("exact duplicate of ") + pl.col("kept"))
    clean = with_first.filter(pl.col("path") == pl.col("kept")).drop("kept", "error")

    report = (pl.concat(dropped) if dropped else pl.DataFrame(schema=DROPPED_SCHEMA)).sort("path")
    return clean.sort("path"), report
