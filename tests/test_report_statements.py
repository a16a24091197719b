"""Every statement of the status report checked against the store it was written from,
for an image project and a table project: what the model sorts (images or rows), the
test-set sentence and its frequency in words, the deployment, the monitoring, the known
problems and the next steps, the data and cleaning facts, the gates; and the shipped
problems' descriptions against their pixels."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from PIL import Image

from assets.runtime.run import run_lifecycle
from mllife.config.project import load_config
from mllife.data.defaults import write_breast_cancer
from mllife.reporting.client import NO_WEAK_SPOT, in_words
from mllife.storage.store import Store
from tests.browser import Browser

TABLE_CONFIG = """
[data]
kind = "table"
path = "data/cancer.csv"
target = "target"
id = "id"

[[candidates]]
name = "logreg"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
params = { max_iter = 5000 }
"""


def _page_text(path: str) -> dict[str, str]:
    """Each section's text as a reader sees it, from headless Chromium."""
    with Browser() as browser:
        browser.goto("file://" + path)
        # the technical sections fold: a reader opens them
        browser.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        sections = browser.evaluate(
            "Object.fromEntries(Array.from(document.querySelectorAll('section, details'))"
            ".map(s => [s.id, s.innerText]))"
        )
        assert browser.console_errors == []
    return sections


def _run(config_path) -> tuple[dict[str, str], Store, str, str]:
    return _read(config_path, run_lifecycle(config_path, log_level="WARNING"))


def _read(config_path, outcome) -> tuple[dict[str, str], Store, str, str]:
    """The report's sections as text, the store, the run and what `mllife run` printed."""
    assert outcome.success, "\n".join(outcome.lines)
    path = next(x for x in outcome.lines if x.startswith("report: ")).removeprefix("report: ")
    store = Store(load_config(config_path).store_path)
    return _page_text(path), store, outcome.run_id, "\n".join(outcome.lines)


def _check_common(text: dict[str, str], store: Store, run_id: str, noun: str) -> None:
    client = text["client"]
    champion = store.champion()
    # the deployment: the champion the store holds, deployed by this very run
    deployed = store.deployments().filter(pl.col("run_id") == run_id)
    assert deployed["model_hash"].to_list() == [champion.model_hash]
    assert f"The new model '{champion.name}' is now the deployed model." in client
    assert champion.model_hash[:12] in text["deployment"]
    # ... so no section may say that there is no champion
    assert "no champion deployed yet" not in " ".join(text.values()).lower()
    # the test-set sentence: the champion's recorded test accuracy, its size, in words
    metrics = store.query(
        "SELECT metric, value FROM evaluations WHERE model_hash = ? AND split = 'test'",
        [champion.model_hash],
    )
    accuracy = dict(metrics.iter_rows())["accuracy"]
    split = store.query("SELECT * FROM splits ORDER BY created_at DESC LIMIT 1").row(0, named=True)
    sentence = r"On (\d+) new (\w+) it had never seen .*? right (.+?)(?: times)? \(([\d.]+)%"
    said = re.search(sentence, client)
    assert said is not None, client
    assert int(said[1]) == split["n_test"] and said[2] == noun
    assert float(said[4]) == pytest.approx(100 * accuracy, abs=0.05)
    assert said[3] == in_words(accuracy)
    if said[3].startswith("about"):
        n, d = map(int, re.findall(r"\d+", said[3]))
        assert abs(n / d - accuracy) <= 0.005 and n < d
    # the data facts: kept and dropped counts, split sizes, test reads
    dataset = store.query("SELECT * FROM datasets ORDER BY created_at DESC LIMIT 1").row(
        0, named=True
    )
    data = text["data"]
    assert f"{dataset['n_rows']} kept, {dataset['n_dropped']} dropped" in data
    for name in ("train", "validation", "test"):
        assert re.search(rf"^{name}\s+{split[f'n_{name}']}$", data, re.MULTILINE), data
    reads = store.test_read_count(split_version=split["split_version"])
    assert f"has been read {reads} times" in data
    # the gate table: the verdict the store recorded for this run's challenger
    recorded = store.query("SELECT passed, summary FROM challengers WHERE run_id = ?", [run_id])
    assert recorded["passed"].to_list() == [True]
    assert recorded["summary"][0] in text["technical"]
    assert "{" not in data and "'train'" not in data  # a table, not a printed dict


def test_image_report_statements_match_the_store(deployed_digits):
    text, store, run_id, printed = _read(*deployed_digits)  # the suite's first run
    assert "this run deployed the first champion" in printed
    _check_common(text, store, run_id, "images")
    client = text["client"]
    assert "The model sorts images into 10 classes: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9." in client
    # known problems: each count is the champion's recorded results on the positives
    champion = store.champion().model_hash
    results = store.query(
        "SELECT t.problem, count(*) AS n, sum(r.correct::INT) AS right FROM patterns t"
        " JOIN pattern_results r USING (pattern_hash) WHERE r.model_hash = ?"
        " AND t.kind = 'positive' GROUP BY t.problem",
        [champion],
    )
    failing = False
    for problem, n, right in results.iter_rows():
        assert re.search(rf"'{problem}' \(.*?\): the model gets {right} of {n} such", client)
        failing |= right / n < 0.5
    steps = client[client.index("Next steps") :]
    assert failing == ("mostly misclassified" in steps)
    assert (NO_WEAK_SPOT in steps) == (steps.count("\n") <= 1)  # only when nothing else


def test_table_report_speaks_of_rows_and_lists_every_dropped_row(tmp_path):
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    write_breast_cancer(root / "data" / "cancer.csv")
    frame = pl.read_csv(root / "data" / "cancer.csv")
    extra = pl.concat(
        [
            frame.head(2).with_columns(pl.col("id") + "-copy"),  # exact duplicates
            frame.slice(5, 1).with_columns(
                pl.col("id") + "-unlabelled", pl.lit(None, pl.String).alias("target")
            ),
        ]
    )
    pl.concat([frame, extra]).write_csv(root / "data" / "cancer.csv")
    (root / "mllife.toml").write_text(TABLE_CONFIG)
    text, store, run_id, printed = _run(root / "mllife.toml")
    _check_common(text, store, run_id, "rows")
    client = text["client"]
    assert "The model sorts table rows into 2 classes: benign, malignant." in client
    assert "image" not in client.lower() and "files" not in text["data"]
    data = text["data"]
    assert "572 rows, 569 kept, 3 dropped" in data
    cleaning = data.split("Suspected label errors")[0]  # the label-error table lists rows too
    dropped = re.findall(r"^row (\d+)\s+(.+)$", cleaning, re.MULTILINE)
    assert len(dropped) == 3, data
    assert sum("exact duplicate of row" in why for _, why in dropped) == 2
    assert sum("missing label" in why for _, why in dropped) == 1
    # the CLI prints the same cleaning report
    numbers = sorted(int(n) for n, _ in dropped)
    assert "cleaning dropped 3:" in printed
    assert re.search(r"exact duplicate \(2\): rows \d+", printed)
    assert f"missing label (1): rows {numbers[-1]}" in printed


def test_shipped_problem_descriptions_are_true_to_the_pixels(digits_folder):
    from tests.conftest import REPO

    folder = REPO / "problems" / "inverted_colours"
    description = (folder / "problem.toml").read_text()
    assert "dark strokes on a light background" in description
    assert "training digits are all light strokes on a black background" in description

    def brightness(paths) -> float:
        return float(np.mean([np.asarray(Image.open(p).convert("L")).mean() for p in paths]))

    training = brightness(sorted(digits_folder.rglob("*.png"))[::40])
    inverted = brightness(sorted(folder.glob("positive_*.png")))
    assert training < 80 < 170 < inverted  # light on black vs dark on light
