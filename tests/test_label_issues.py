"""Suspected label errors by confident learning (#45): found on the digits with labels
flipped on purpose, reported in every run, never dropped; small classes stated."""

from __future__ import annotations

import hashlib

import numpy as np

from mllife.data.near_duplicates import image_fingerprints
from mllife.evaluation.label_issues import find_label_issues


def test_most_flipped_digit_labels_are_found(all_digits):
    paths = sorted(all_digits.rglob("*.png"))
    given = np.array([p.parent.name for p in paths], dtype=object)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(paths), size=len(paths) // 20, replace=False)  # 5%
    for i in flipped:
        given[i] = str((int(given[i]) + int(rng.integers(1, 10))) % 10)
    sha = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    thumbnails = image_fingerprints([str(p) for p in paths], sha, root=all_digits).thumbnails
    features = thumbnails / 255.0
    found = find_label_issues(features, given, [str(p) for p in paths])
    suspected = {issue.key for issue in found.issues}
    truth = {str(paths[i]) for i in flipped}
    precision, recall = len(suspected & truth) / len(suspected), len(suspected & truth) / len(truth)
    # measured: precision 0.70, recall 0.82 (logistic regression on 16x16 thumbnails)
    assert recall >= 0.7 and precision >= 0.5, (precision, recall)
    first = found.issues[0]
    assert first.key in truth and first.suggested != first.given and first.quality < 0.1
    assert found.checked == len(paths) and "look mislabelled" in found.describe()


def test_classes_too_small_to_score_are_left_out_and_said():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(43, 3))
    labels = ["a"] * 20 + ["b"] * 20 + ["c"] * 3
    found = find_label_issues(features, labels, [f"row {i}" for i in range(43)])
    assert found.skipped == {"c": 3} and found.checked == 40
    assert "too few rows" in found.describe()
    alone = find_label_issues(features[:23], labels[:20] + ["c"] * 3, list(range(23)))
    assert alone.issues == [] and "fewer than two classes" in alone.describe()


def test_turned_on_every_run_reports_them_without_retraining(tmp_path, deployed_digits, capsys):
    """`[cleaning] label_issues = true` on a project that ran: the next run adds the search
    (the label_issues asset) and the report's data section, and trains nothing again."""
    from assets.runtime.run import run_lifecycle
    from tests.conftest import copy_project

    config_path = copy_project(deployed_digits[0], tmp_path / "p")
    with open(config_path, "a") as handle:
        handle.write("\n[cleaning]\nlabel_issues = true\n")
    outcome = run_lifecycle(config_path, log_level="WARNING")
    assert outcome.success, "\n".join(outcome.lines)
    assert "model fits: 0" in outcome.lines[-1], outcome.lines[-1]  # nothing trained again
    report = config_path.parent / ".mllife" / "reports" / f"status-{outcome.run_id}.html"
    html = report.read_text()
    assert "Suspected label errors (training split)" in html
    assert "looks like" in html and "P(given) " in html  # the suspects as thumbnails
    # the near-duplicate search's finding beside it: none in the digits
    assert "Near-duplicates" in html and "0 near-duplicate pair(s) across splits" in html
    from mllife.cli import main

    capsys.readouterr()
    assert main(["--config", str(config_path), "status"]) == 0
    status = capsys.readouterr().out
    assert "  suspected label errors: " in status and "look mislabelled" in status, status
    assert "  near-duplicates: 0 near-duplicate pair(s) across splits" in status, status


def test_drop_label_issues_drops_them_with_their_reason(tmp_path, small_digits_folder):
    """`[cleaning] drop_label_issues = true`: the suspects leave the clean rows and join
    the dropped ones, each with its reason; nothing else changes."""
    import shutil

    from mllife.config.project import load_config
    from mllife.data.stage import clean, read_raw
    from mllife.evaluation.label_issues import drop_label_issues
    from tests.conftest import make_project

    config_path = make_project(
        tmp_path / "p", small_digits_folder, extra="[cleaning]\ndrop_label_issues = true"
    )
    folder = config_path.parent / "data" / "digits"
    files = sorted(folder.rglob("*.png"))
    rng = np.random.default_rng(3)
    moved = set()
    for i in rng.choice(len(files), size=len(files) // 20, replace=False):
        wrong = str((int(files[i].parent.name) + 1 + int(rng.integers(0, 9))) % 10)
        target = folder / wrong / files[i].name
        shutil.move(files[i], target)
        moved.add(str(target.relative_to(config_path.parent)))
    config = load_config(config_path)
    assert config.cleaning.drop_label_issues
    before = clean(config, read_raw(config))
    after, found = drop_label_issues(config, before)
    reasons = after.dropped.filter(after.dropped["reason"].str.starts_with("suspected label"))
    assert reasons.height == len(found.issues) > 0
    assert after.rows.height + reasons.height == before.rows.height
    caught = set(reasons["path"].to_list()) & moved
    assert len(caught) / len(moved) >= 0.6, (len(caught), len(moved), reasons["path"][:3])
    assert "looks like" in reasons["reason"][0] and "drop_label_issues" in reasons["reason"][0]
