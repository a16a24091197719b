import hashlib

import polars as pl

from mllife.config.project import SplitConfig
from mllife.data.split import assign_splits, leaking_keys, split_version


def frame(n, offset=0, classes=3):
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(offset, offset + n)]
    return pl.DataFrame(
        {"sha256": keys, "label": [str(i % classes) for i in range(offset, offset + n)]}
    )


def shares(assigned):
    counts = assigned.group_by("label", "split").len()
    totals = assigned.group_by("label").len().rename({"len": "total"})
    return counts.join(totals, on="label").with_columns(
        (pl.col("len") / pl.col("total")).alias("share")
    )


def test_each_class_is_stratified_to_within_a_point():
    assigned = assign_splits(frame(3 * 100), SplitConfig())  # 100 rows per class
    test = shares(assigned).filter(pl.col("split") == "test")
    assert ((test["share"] - 0.1).abs() <= 0.01).all()
    assert assigned["split"].value_counts().sort("split")["count"].to_list() == [30, 240, 30]


def test_rows_keep_their_split_when_data_grows_and_classes_stay_stratified():
    config = SplitConfig(seed=3)
    before = assign_splits(frame(600), config)
    previous = dict(before.select("sha256", "split").iter_rows())
    grown = pl.concat([frame(600), frame(900, offset=600)])
    after = assign_splits(grown, config, previous=previous)
    joined = before.join(after, on="sha256", suffix="_after")
    assert joined.height == 600 and (joined["split"] == joined["split_after"]).all()
    test = shares(after).filter(pl.col("split") == "test")
    assert ((test["share"] - 0.1).abs() <= 0.01).all()


def test_assignment_is_deterministic_and_order_independent():
    a = assign_splits(frame(500), SplitConfig(seed=0))
    b = assign_splits(frame(500).reverse(), SplitConfig(seed=0))
    assert split_version(a) == split_version(b)
    c = assign_splits(frame(500), SplitConfig(seed=1))
    assert split_version(a) != split_version(c)


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
