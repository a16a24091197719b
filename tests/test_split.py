import hashlib
import re

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


def test_whole_groups_go_to_one_split_and_never_move():
    import numpy as np

    from mllife.data.split import assign_groups

    rng = np.random.default_rng(0)
    config = SplitConfig(group="patient")
    patients = pl.Series([f"p{int(i)}" for i in rng.integers(0, 400, 5000)])
    split = assign_groups(patients, config)
    frame = pl.DataFrame({"patient": patients, "split": split.astype(str)})
    per_group = frame.group_by("patient").agg(pl.col("split").n_unique().alias("n"))
    assert per_group["n"].max() == 1  # no patient in two splits
    shares = frame.unique("patient")["split"].value_counts(normalize=True)
    share = dict(zip(shares["split"], shares["proportion"], strict=True))
    assert abs(share["train"] - 0.8) < 0.06 and abs(share["test"] - 0.1) < 0.05
    # more data: known patients keep their split, new ones get theirs by name
    grown = pl.concat([patients, pl.Series([f"new{i}" for i in range(50)]), patients[:100]])
    again = assign_groups(grown, config)
    assert list(again[: len(patients)]) == list(split)
    assert list(again[-100:]) == list(split[:100])


def test_a_table_split_by_group_keeps_each_group_together_and_names_rows_without_one(tmp_path):
    import pytest

    from mllife import DataError
    from mllife.config.project import load_config
    from mllife.data.stage import clean, make_splits, read_raw
    from mllife.storage.store import Store

    n = 600
    frame = pl.DataFrame(
        {
            "x": [float(i % 17) for i in range(n)],
            "patient": [f"p{i // 6}" for i in range(n)],  # 100 patients, 6 rows each
            "target": ["yes" if i % 3 else "no" for i in range(n)],
        }
    )
    frame.write_csv(tmp_path / "t.csv")
    (tmp_path / "mllife.toml").write_text(
        '[data]\nkind = "table"\npath = "t.csv"\ntarget = "target"\n'
        '[split]\ngroup = "patient"\n'
        '[[candidates]]\nname = "lr"\nkind = "sklearn"\n'
        'estimator = "sklearn.linear_model.LogisticRegression"\n'
    )
    config = load_config(tmp_path / "mllife.toml")
    data = clean(config, read_raw(config))
    splits, _ = make_splits(config, data, store=Store(tmp_path / "store.duckdb"))
    together = splits.rows.group_by("patient").agg(pl.col("split").n_unique().alias("n"))
    assert together["n"].max() == 1 and set(splits.rows["split"]) == {"train", "validation", "test"}
    # a row without a group could sit beside its group's rows in any split: refused
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 4)
        .then(None)
        .otherwise(pl.col("patient"))
        .alias("patient")
    ).write_csv(tmp_path / "t.csv")
    data = clean(config, read_raw(config))
    with pytest.raises(DataError, match=r"\[split\] group: 1 row\(s\) have no group \(5\)"):
        make_splits(config, data, store=Store(tmp_path / "store2.duckdb"))


def test_group_settings_that_cannot_work_are_config_errors(tmp_path):
    import pytest

    from mllife import ConfigError
    from mllife.config.project import load_config

    base = '[[candidates]]\nname = "lr"\nkind = "sklearn"\nestimator = "a.B"\n'
    cases = [
        ('[data]\nkind = "images"\n[split]\ngroup = "patient"\n', "split.group_pattern"),
        ('[split]\ngroup_pattern = "cam_"\n', "has no capture group"),
        ('[split]\ngroup_pattern = "(cam"\n', "is not a regular expression"),
        ('[split]\ngroup_pattern = "(c)"\ngroup_manifest = "g.csv"\n', "give one of"),
        (
            '[data]\nkind = "table"\npath = "t.csv"\n[split]\ngroup_manifest = "g.csv"\n',
            "tables use split.group",
        ),
    ]
    for text, message in cases:
        (tmp_path / "mllife.toml").write_text(text + base)
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(tmp_path / "mllife.toml")


def test_images_split_by_a_group_in_their_file_names(tmp_path, digits_folder):
    import pytest

    from mllife import DataError
    from mllife.config.project import load_config
    from mllife.data.stage import clean, make_splits, read_raw
    from mllife.storage.store import Store
    from tests.conftest import make_project

    def grouped(folder, pattern):
        path = make_project(folder, digits_folder)
        text = path.read_text().replace("[split]\n", f"[split]\ngroup_pattern = '{pattern}'\n")
        path.write_text(text)
        return load_config(path)

    # digits/3/0879.png: the group is "087", as a camera or a patient would be
    config = grouped(tmp_path / "p", r"/(\d\d\d)\d\.png$")
    data = clean(config, read_raw(config))
    splits, _ = make_splits(config, data, store=Store(tmp_path / "s.duckdb"))
    groups = splits.rows.with_columns(
        pl.col("path").str.extract(r"/(\d\d\d)\d\.png$").alias("group")
    )
    assert groups.group_by("group").agg(pl.col("split").n_unique())["split"].max() == 1
    # the same groups from a manifest (paths relative to the data folder), as a CSV
    path = make_project(tmp_path / "m", digits_folder)
    files = sorted((path.parent / "data" / "digits").rglob("*.png"))
    listed = [f"{f.parent.name}/{f.name}" for f in files]
    manifest = pl.DataFrame({"path": listed, "group": [f.name[:3] for f in files]})
    manifest.write_csv(path.parent / "groups.csv")
    path.write_text(
        path.read_text().replace("[split]\n", "[split]\ngroup_manifest = 'groups.csv'\n")
    )
    config = load_config(path)
    by_manifest, _ = make_splits(
        config, clean(config, read_raw(config)), store=Store(tmp_path / "m.db")
    )
    assert (
        by_manifest.rows.select("path", "split")
        .sort("path")
        .equals(splits.rows.select("path", "split").sort("path"))
    )  # a group's split follows from its name and the seed alone, however it is given
    manifest.slice(1).write_csv(path.parent / "groups.csv")  # a file without a group
    with pytest.raises(
        DataError, match=r"group_manifest: 1 file\(s\) have no group \(data/digits/0/"
    ):
        make_splits(config, clean(config, read_raw(config)), store=Store(tmp_path / "m2.db"))
    # too few groups for every class to reach validation and test: said in those words
    config = grouped(tmp_path / "q", r"/(\d)\d\d\d\.png$")
    with pytest.raises(DataError, match="whole groups go to one split: 2 groups are too few"):
        make_splits(config, clean(config, read_raw(config)), store=Store(tmp_path / "t.duckdb"))
