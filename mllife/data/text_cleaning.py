"""Cleaning free-text columns: what is not text, what is empty once markup is removed,
what is too long, and reviews that are the same once case, spacing and punctuation are
ignored (duplicates, or conflicting labels). Each dropped row gets its reason.

HTML is not a reason to drop a row: tags and entities are removed by the model's own
normalisation (:func:`mllife.preprocess.text.normalized_text`, in training and serving
alike), and :func:`markup_count` says how many texts had some.
"""

from __future__ import annotations

import polars as pl

from mllife.data.text_normal import has_markup, normalized_key

__all__ = ["clean_texts", "markup_count", "markup_note"]

#: what polars reads undecodable bytes as (``encoding="utf8-lossy"``)
REPLACEMENT = "\ufffd"


def _normalized(column: str, fn) -> pl.Expr:
    return pl.col(column).cast(pl.String).map_elements(fn, return_dtype=pl.String)


def clean_texts(
    rest: pl.DataFrame, drop, *, columns: list[str], features: list[str], max_chars: int
) -> pl.DataFrame:
    """``rest`` without the rows a text column disqualifies; those go to ``drop``.

    Any table: bytes that are not text, and texts over ``max_chars``. When the text is
    the only feature (a text project) also a blank text (nothing to learn from; beside
    other features it is a missing value), and rows whose features are the same once
    texts are normalised: duplicates, or conflicting labels.
    """
    for name in columns:
        text = pl.col(name).cast(pl.String)
        rules = [
            (text.str.contains(REPLACEMENT, literal=True),
             f"invalid UTF-8 in column {name!r} (undecodable bytes: save the file as UTF-8)"),
            (text.str.contains("\x00", literal=True),
             f"NUL byte in column {name!r} (binary data, not text)"),
            (text.str.len_chars() > max_chars,
             f"text over {max_chars:,} characters in column {name!r} ([data] max_text_chars)"),
        ]  # fmt: skip
        for bad, reason in rules:
            hit = rest.filter(bad.fill_null(False))
            drop(hit, pl.lit(reason))
            rest = rest.filter(~bad.fill_null(False))
    if list(features) != list(columns) or len(columns) != 1:
        return rest
    name = columns[0]
    rest = rest.with_columns(_normalized(name, normalized_key).alias("_key"))
    empty = rest.filter(pl.col("_key").fill_null("") == "")
    drop(empty, pl.lit(f"empty text in column {name!r} (blank, or only markup)"))
    rest = rest.filter(pl.col("_key").fill_null("") != "")
    return _same_text(rest, drop, name)


def _same_text(rest: pl.DataFrame, drop, name: str) -> pl.DataFrame:
    """Rows whose normalised text (``_key``) repeats: all of them when their labels
    differ, else all but the first."""
    labels = rest.group_by("_key").agg(
        pl.col("label").unique().sort().alias("labels"), pl.col("row").min().alias("kept")
    )
    conflicting = labels.filter(pl.col("labels").list.len() > 1)
    if conflicting.height:
        bad = rest.join(conflicting, on="_key")
        reason = (
            f"conflicting labels for the same text in column {name!r} (case, spacing and"
            " punctuation aside): "
        )
        drop(bad, pl.lit(reason) + pl.col("labels").list.join(", "))
        rest = rest.join(conflicting.select("_key"), on="_key", how="anti")
    with_first = rest.join(labels.select("_key", "kept"), on="_key")
    repeated = with_first.filter(pl.col("row") != pl.col("kept"))
    aside = f" (column {name!r}: case, spacing and punctuation aside)"
    drop(
        repeated,
        pl.lit("normalised duplicate of row ") + pl.col("kept").cast(pl.String) + pl.lit(aside),
    )
    return with_first.filter(pl.col("row") == pl.col("kept")).drop("kept", "_key")


def markup_count(rows: pl.DataFrame, columns: list[str]) -> dict[str, int]:
    """How many texts per column held HTML tags or entities (removed by normalisation)."""
    return {
        name: sum(has_markup(t) for t in rows[name].cast(pl.String).drop_nulls().to_list())
        for name in columns
        if name in rows.columns
    }


def markup_note(rows: pl.DataFrame, columns: dict | None) -> str | None:
    """What cleaning's report says of markup in the kept rows' text columns (None:
    no text column, or no markup)."""
    texts = [n for n, spec in (columns or {}).items() if spec.dtype == "text"]
    found = {n: k for n, k in markup_count(rows, texts).items() if k}
    if not found:
        return None
    where = ", ".join(f"{k} texts of {n!r}" for n, k in found.items())
    return f"HTML tags and entities in {where}: removed by the text normalisation (rows kept)"
