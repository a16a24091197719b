"""A first look at someone's data, before anything is written: what kind it is, its
classes, sizes and columns, and every reason it cannot become a project yet.

Cheap on purpose (a 10,000-image folder or a 1 M-row table in seconds): image files are
counted from the directory listing and only a sample of headers is read; tables are read
once by polars.
"""

from __future__ import annotations

import os
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mllife._errors import DataError
from mllife.data.contract_file import Contract, infer_contract
from mllife.data.images import IMAGE_SUFFIXES
from mllife.data.split import MIN_PER_CLASS
from mllife.data.tables import RESERVED, read_table

__all__ = ["MIN_PER_CLASS", "ImageSurvey", "TableSurvey", "survey_images", "survey_table"]

#: image headers read to guess colour and a sensible size
HEADER_SAMPLE = 300


@dataclass(frozen=True)
class ImageSurvey:
    folder: Path
    #: class -> number of image files
    classes: dict[str, int]
    colour: bool
    #: median shorter side of the sampled images, in pixels
    median_side: int

    @property
    def n_images(self) -> int:
        return sum(self.classes.values())


@dataclass(frozen=True)
class TableSurvey:
    file: Path
    target: str
    id: str | None
    n_rows: int
    classes: dict[str, int]
    contract: Contract


def survey_images(folder: Path) -> ImageSurvey:
    """Classes (subfolders) with their image counts, colour and typical size."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"{folder} is not a folder; --images takes a folder with one subfolder per"
            " class (photos/cat/*.jpg, photos/dog/*.jpg, ...)"
        )
    files: dict[str, list[str]] = {}
    loose: list[str] = []
    links: list[str] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_symlink():
            links.append(entry.path)
        elif entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
            _check_class_name(entry.name, folder)
            files[entry.name] = []
            for item in os.scandir(entry.path):
                if item.is_symlink():
                    links.append(item.path)
                elif _is_image(item):
                    files[entry.name].append(item.path)
        elif _is_image(entry):
            loose.append(entry.name)
    if links:
        links.sort()
        raise DataError(
            f"{folder} holds {len(links)} symbolic link(s): {', '.join(links[:5])}"
            f"{' ...' if len(links) > 5 else ''}. Links are not followed (they can point"
            " anywhere, outside the folder or at themselves): replace each with a copy of"
            " what it points to, or remove it"
        )
    counts = {name: len(paths) for name, paths in files.items() if paths}
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    if not counts:
        hint = (
            f" ({len(loose)} images lie directly in it: move them into class subfolders)"
            if loose
            else ""
        )
        raise DataError(
            f"{folder} holds no images in class subfolders{hint}; expected"
            f" {folder}/<class>/<image> with one of {suffixes}"
        )
    if len(counts) < 2:
        only = next(iter(counts))
        raise DataError(
            f"{folder} has one class ({only!r}, {counts[only]} images); a classifier needs"
            f" at least two: add a subfolder of images per other class"
        )
    _check_enough_per_class(counts, f"{folder}", "images")
    sample = [p for paths in files.values() for p in paths]
    random.Random(0).shuffle(sample)
    colour, side = _look_at(sample[:HEADER_SAMPLE])
    return ImageSurvey(folder.resolve(), counts, colour, side)


def _check_class_name(name: str, folder: Path) -> None:
    """A class name is written into mllife.toml and every report: no control characters
    (a line break in a folder name must not become configuration)."""
    bad = sorted({f"U+{ord(c):04X}" for c in name if not c.isprintable()})
    if bad or not name.strip():
        raise DataError(
            f"{folder}: the class folder {name!r} cannot name a class: "
            + (f"it holds control characters ({', '.join(bad)})" if bad else "it is blank")
            + "; rename the folder to printable text"
        )


def _check_enough_per_class(counts: dict[str, int], where: str, what: str) -> None:
    few = {name: n for name, n in counts.items() if n < MIN_PER_CLASS}
    if few:
        shown = ", ".join(f"{name!r} has {n}" for name, n in list(few.items())[:5])
        raise DataError(
            f"{where}: too few {what} to split 80/10/10 with at least one of each class in"
            f" validation and test: each class needs {MIN_PER_CLASS} or more, and {shown}."
            f" Add {what} of these classes (or leave the class out)"
        )


def _is_image(entry: os.DirEntry) -> bool:
    return (
        entry.is_file(follow_symlinks=False) and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
    )


def _look_at(paths: list[str]) -> tuple[bool, int]:
    """(any colour image, median shorter side) from image headers (no full decode)."""
    from PIL import Image, UnidentifiedImageError

    colour, sides = False, []
    for path in paths:
        try:
            with Image.open(path) as image:
                colour = colour or image.mode not in ("1", "L", "LA", "I", "I;16", "F")
                sides.append(min(image.size))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            continue  # unreadable or over the pixel limit: the run's cleaning names it
    if not sides:
        raise DataError(f"none of the {len(paths)} sampled images could be read: {paths[:3]}")
    return colour, int(statistics.median(sides))


def checked_classes(frame: pl.DataFrame, target: str, where: str) -> dict[str, int]:
    """The target's classes with their row counts, or why they cannot be classes."""
    labels = frame[target].cast(pl.String).drop_nulls()
    classes = dict(labels.value_counts(sort=True).iter_rows())
    for name in classes:
        _check_class_name(name, Path(where))
    if len(classes) < 2:
        seen = f"only {next(iter(classes))!r}" if classes else "no value at all"
        raise DataError(
            f"{where}: the target {target!r} holds {seen} in {frame.height} rows; a"
            " classifier needs at least two classes (is --target the right column?)"
        )
    if len(classes) > max(50, frame.height // 5):
        raise DataError(
            f"{where}: the target {target!r} has {len(classes)} distinct values in"
            f" {frame.height} rows; that is a number to predict, not classes"
            " (mllife does classification; choose a column of labels)"
        )
    _check_enough_per_class(classes, f"{where} ({frame.height} rows)", "rows")
    return classes


def survey_table(file: Path, *, target: str, id: str | None = None) -> TableSurvey:
    """The table's classes and inferred contract, or a clear error saying what is wrong."""
    file = Path(file)
    if file.suffix.lower() not in (".csv", ".parquet"):
        raise DataError(f"{file}: --table takes a .csv or .parquet file")
    frame = read_table(file)  # names the file when missing or unreadable
    columns = frame.columns
    if target not in columns:
        raise DataError(
            f"{file} has no column {target!r} (--target); its columns are"
            f" {columns[:30]}{' ...' if len(columns) > 30 else ''}"
        )
    if id is not None and id not in columns:
        raise DataError(f"{file} has no column {id!r} (--id); its columns are {columns[:30]}")
    clash = sorted(RESERVED & set(columns))
    if clash:
        raise DataError(f"{file}: column names {clash} are reserved by mllife; rename them")
    features = [c for c in columns if c not in (target, id)]
    if not features:
        raise DataError(
            f"{file} holds only the target column {target!r}"
            + (f" and the id {id!r}" if id else "")
            + ": a model needs at least one feature column to learn from"
        )
    classes = checked_classes(frame, target, str(file))
    contract = infer_contract(frame, features)
    return TableSurvey(file.resolve(), target, id, frame.height, classes, contract)
