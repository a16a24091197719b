"""Derived features of the breast cancer example (``[features] derive = "features:add"``).

mllife calls ``add`` with the raw feature columns (never the target) and adds what it
returns to the table: the contract, cleaning, drift and every model see the new
columns, and each model carries this file's source, so the server computes them from
the 30 columns clients send.
"""

import polars as pl


def add(frame: pl.DataFrame) -> pl.DataFrame:
    """Shape beyond size: how jagged a nucleus's outline is for its radius, and how much
    larger its worst part is than its mean."""
    return frame.select(
        (pl.col("mean_perimeter") / pl.col("mean_radius")).alias("perimeter_per_radius"),
        (pl.col("worst_area") / pl.col("mean_area")).alias("worst_to_mean_area"),
    )
