"""A report whose class labels, problem names and descriptions hold HTML, quotes,
ampersands, newlines and right-to-left characters: in headless Chromium nothing of it
executes and every such text shows literally."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from assets.runtime.run import run_lifecycle

HOSTILE = [
    "<script>window.__pwned = 1</script>",
    'say "hi" & <b>bold</b>',
    "\u202eevil\u202c > 'quoted'",
]
PROBLEM = '<img src=x onerror="window.__pwned = 2">'
DESCRIPTION = 'breaks on <i>italics</i> & "quotes"'

CONFIG = """
[data]
kind = "table"
path = "data/hostile.csv"
target = "label_text"

[[candidates]]
name = "logreg"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
params = { max_iter = 2000 }
"""


def _project(root):
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 3, n)
    frame = pl.DataFrame(
        {
            "x1": rng.normal(size=n) + y,
            "x2": rng.normal(size=n) - y,
            "label_text": [HOSTILE[i] for i in y],
        }
    )
    (root / "data").mkdir(parents=True)
    frame.write_csv(root / "data" / "hostile.csv")
    (root / "mllife.toml").write_text(CONFIG)
    problem = root / "problems" / PROBLEM.replace("/", "_")
    problem.mkdir(parents=True)
    patterns = "".join(
        f"[[patterns]]\nrow = {{ x1 = {1.0 * i}, x2 = {-1.0 * i} }}\n"
        f'expected = {json.dumps(HOSTILE[i])}\nkind = "positive"\n'
        for i in range(3)
    )
    description = json.dumps(DESCRIPTION)
    (problem / "problem.toml").write_text(f"description = {description}\n{patterns}")
    return root / "mllife.toml"


def test_hostile_labels_and_problem_names_show_literally_and_never_run(tmp_path):
    from tests.browser import Browser

    outcome = run_lifecycle(_project(tmp_path / "p"), log_level="WARNING")
    assert outcome.ok, "\n".join(outcome.lines)
    report = next(line for line in outcome.lines if line.startswith("report: "))
    with Browser() as browser:
        browser.goto("file://" + report.removeprefix("report: "))
        assert browser.evaluate("typeof window.__pwned") == "undefined"
        injected = browser.evaluate(
            "Array.from(document.querySelectorAll('script, img[onerror], b, i'))"
            ".filter(e => !['B', 'I'].includes(e.tagName)"
            " || ['bold', 'italics'].includes(e.textContent))"
            ".map(e => e.outerHTML)"
        )
        assert injected == []
        text = browser.evaluate("document.body.innerText")
        for label in HOSTILE:
            assert label in text, label
        assert PROBLEM in text and "breaks on <i>italics</i>" in text
        assert browser.console_errors == []
