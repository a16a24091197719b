import polars as pl
import pytest
from sklearn.metrics import cohen_kappa_score

from mllife import DataError
from mllife.data.annotations import human_agreement, read_annotations


def frame(rows):
    return pl.DataFrame(rows, schema=["item", "annotator", "label"], orient="row")


def test_perfect_agreement():
    rows = [(f"i{i}", a, "cat" if i % 2 else "dog") for i in range(10) for a in "abc"]
    result = human_agreement(frame(rows))
    assert result.fleiss_kappa == pytest.approx(1.0) and result.human_accuracy == 1.0
    assert result.n_items == 10 and result.n_annotators == 3


def test_fleiss_kappa_textbook_example():
    # Wikipedia's Fleiss' kappa example: 10 items, 14 raters, 5 categories -> 0.210
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    rows = []
    for i, counts in enumerate(table):
        rater = 0
        for category, n in enumerate(counts):
            for _ in range(n):
                rows.append((f"i{i}", f"r{rater}", f"c{category}"))
                rater += 1
    assert human_agreement(frame(rows)).fleiss_kappa == pytest.approx(0.210, abs=5e-4)


def test_human_accuracy_and_cohen_kappa():
    a = ["x", "x", "y", "y", "x", "y"]
    b = ["x", "y", "y", "y", "x", "x"]
    c = ["x", "x", "y", "x", "x", "y"]
    rows = [
        (f"i{i}", name, lbl)
        for name, labels in (("a", a), ("b", b), ("c", c))
        for i, lbl in enumerate(labels)
    ]
    result = human_agreement(frame(rows))
    pairs = [cohen_kappa_score(a, b), cohen_kappa_score(a, c), cohen_kappa_score(b, c)]
    assert result.mean_cohen_kappa == pytest.approx(sum(pairs) / 3)
    # leave-one-out majorities exist only where the other two agree
    assert 0 < result.human_accuracy < 1
    assert "human-level accuracy" in result.describe()


def test_bad_annotation_files(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("item,annotator\n1,a\n")
    with pytest.raises(DataError, match="lack columns"):
        read_annotations(path)
    path.write_text("item,annotator,label\n1,a,x\n2,a,y\n")
    with pytest.raises(DataError, match="at least two annotators"):
        human_agreement(read_annotations(path))
