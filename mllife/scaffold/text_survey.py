"""A first look at labelled texts for ``mllife init --text``: a table (CSV, JSONL,
Parquet) with a free-text column, or a folder with one subfolder of ``.txt`` files per
class; which column is the text, its classes, lengths and markup, and every reason it
cannot become a text project yet."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mllife._errors import DataError
from mllife.data.tables import RESERVED, TABLE_SUFFIXES, read_table

__all__ = ["TextSurvey", "survey_text"]

#: a column is free text when its values are this long on average (characters) ...
TEXT_MEAN_CHARS = 15
#: ... and mostly distinct
TEXT_DISTINCT_SHARE = 0.5


@dataclass(frozen=True)
class TextSurvey:
    #: the table as read (for a folder: built from its files, to be written as Parquet)
    frame: pl.DataFrame
    source: Path
    from_folder: bool
    target: str
    id: str | None
    text: str
    #: columns kept beside the text for measurement only (never model inputs)
    others: tuple[str, ...]
    classes: dict[str, int]
    median_chars: int
    markup: int

    @property
    def n_rows(self) -> int:
        return self.frame.height


def _folder_table(folder: Path, target: str) -> pl.DataFrame:
    """One row per ``<class>/<name>.txt``: text, class and file (the id)."""
    rows = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_dir(follow_symlinks=False) or entry.name.startswith("."):
            continue
        for item in sorted(os.scandir(entry.path), key=lambda e: e.name):
            if item.is_file(follow_symlinks=False) and item.name.endswith(".txt"):
                data = Path(item.path).read_bytes()
                # undecodable bytes become U+FFFD: cleaning drops the file, saying why
                text = data.decode("utf-8", errors="replace")
                rows.append((text, entry.name, f"{entry.name}/{item.name}"))
    if not rows:
        raise DataError(
            f"{folder} holds no .txt files in class subfolders; expected"
            f" {folder}/<class>/<name>.txt (or give a .csv, .jsonl or .parquet file)"
        )
    return pl.DataFrame(rows, schema=["text", target, "file"], orient="row")


def _text_column(frame: pl.DataFrame, candidates: list[str], where: str) -> str:
    """The column that reads as free text: long, mostly distinct strings."""
    scored = []
    for name in candidates:
        column = frame[name]
        if column.dtype != pl.String:
            continue
        values = column.drop_nulls()
        if values.len() == 0:
            continue
        mean = float(values.str.len_chars().mean())
        if mean >= TEXT_MEAN_CHARS and values.n_unique() >= TEXT_DISTINCT_SHARE * values.len():
            scored.append((mean, name))
    if not scored:
        kinds = ", ".join(f"{n} ({frame[n].dtype})" for n in candidates[:10])
        raise DataError(
            f"{where}: no column holds free text (long, mostly distinct strings); its"
            f" columns are {kinds}. Name the text column with --text-column, or use"
            " --table for a table of numbers and categories"
        )
    return max(scored)[1]


def survey_text(
    source: Path, *, target: str | None, id: str | None = None, text: str | None = None
) -> TextSurvey:
    """The text project ``source`` makes, or a clear error saying what is wrong."""
    source = Path(source)
    from_folder = source.is_dir()
    if from_folder:
        target = target or "class"
        frame, id = _folder_table(source, target), "file"
    else:
        if source.suffix.lower() not in TABLE_SUFFIXES:
            raise DataError(
                f"{source}: --text takes a .csv, .jsonl or .parquet file, or a folder with"
                " one subfolder of .txt files per class"
            )
        if not target:
            raise DataError("mllife init --text FILE needs --target COLUMN (the label column)")
        frame = read_table(source)  # names the file when missing, unreadable or empty
    where = str(source)
    for name, what in ((target, "--target"), (id, "--id"), (text, "--text-column")):
        if name is not None and name not in frame.columns:
            raise DataError(f"{where} has no column {name!r} ({what}); its columns are"
                            f" {frame.columns[:30]}")  # fmt: skip
    if clash := sorted(RESERVED & set(frame.columns)):
        raise DataError(f"{where}: column names {clash} are reserved by mllife; rename them")
    rest = [c for c in frame.columns if c not in (target, id)]
    if text is None:
        text = _text_column(frame, rest, where)
    elif frame[text].dtype != pl.String:
        raise DataError(
            f"{where}: column {text!r} holds {frame[text].dtype} values, not text; name"
            " the column with the texts (--text-column)"
        )
    from mllife.scaffold.survey import checked_classes

    classes = checked_classes(frame, target, where)
    texts = frame[text].drop_nulls()
    from mllife.data.text_normal import has_markup

    return TextSurvey(
        frame=frame, source=source.resolve(), from_folder=from_folder, target=target, id=id,
        text=text, others=tuple(c for c in rest if c != text), classes=classes,
        median_chars=int(texts.str.len_chars().median() or 0),
        markup=sum(has_markup(t) for t in texts.to_list()),
    )  # fmt: skip
