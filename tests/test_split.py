import hashlib

import polars as pl

from mllife.config import SplitConfig
from mllife.split import assign_splits, leaking_keys, split_version


def frame(n, offset=0):
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(offset, offset + n)]
    return pl.DataFrame({"sha256": hashes, "label": [str(i % 3) for i in range(n)]})


def test_ratios_are_close_to_the_configuration():
    sizes = dict(assign_splits(frame(20_000), SplitConfig()).group_by("split").len().iter_rows())
    assert abs(sizes["train"] / 20_000 - 0.8) < 0.01
    assert abs(sizes["test"] / 20_000 - 0.1) < 0.01


def test_rows_keep_their_split_when_data_grows():
    before = assign_splits(frame(1000), SplitConfig(seed=3))
    after = assign_splits(pl.concat([frame(1000), frame(500, offset=1000)]), SplitConfig(seed=3))
    joined = before.join(after, on="sha256", suffix="_after")
    assert joined.height == 1000
    assert (joined["split"] == joined["split_after"]).all()


def test_seed_changes_the_assignment_and_version():
    a = assign_splits(frame(500), SplitConfig(seed=0))
    b = assign_splits(frame(500), SplitConfig(seed=1))
    assert split_version(a) != split_version(b)
    assert split_version(a) == split_version(a.reverse())


def test_leakage_detection():
    rows = assign_splits(frame(200), SplitConfig())
    assert leaking_keys(rows) == []
    duplicate = rows.head(1).with_columns(
        pl.when(pl.col("split") == "train")
        .then(pl.lit("test"))
        .otherwise(pl.lit("train"))
        .alias("split")
    )
    assert leaking_keys(pl.concat([rows, duplicate])) == [rows["sha256"][0]]
