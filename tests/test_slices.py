"""Weak spots (#46): slices of the validation rows where the challenger is worse beyond
chance, in every run's report and `mllife slices`; a slice kept as a known problem in
one command, then scored for every model version."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from mllife.cli import main
from mllife.evaluation.slices import Slice, Slices, find_slices, record_slices


def _people(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    smoker = rng.choice(["yes", "no"], n)
    frame = pl.DataFrame(
        {"age": age, "smoker": smoker, "region": rng.choice(list("abcd"), n),
         "note": [f"free text {i}" for i in range(n)]}
    )  # fmt: skip
    return frame, rng, age, smoker


def test_a_weak_slice_is_found_and_chance_is_not():
    frame, rng, age, smoker = _people()
    wrong = rng.random(len(age)) < np.where((age > 60) & (smoker == "yes"), 0.45, 0.08)
    found = find_slices(frame, ~wrong, [f"row {i}" for i in range(len(age))])
    first = found.slices[0]
    assert first.rule[0][0] == "age" and first.rule[0][1].startswith(">= ")
    assert first.rule[1] == ("smoker", "= yes"), first.rule
    assert first.low < first.accuracy < first.high < first.rest_accuracy and first.p_value < 1e-6
    assert len(first.members) == first.size and first.members[0].startswith("row ")
    assert all("note" not in s.description for s in found.slices)  # free text: left out
    # errors at random: nothing survives the correction
    chance = find_slices(frame, rng.random(len(age)) >= 0.1, range(len(age)))
    assert chance.slices == [] and "beyond chance" in chance.describe()
    few = find_slices(frame.head(20), ~wrong[:20], range(20))
    assert few.slices == [] and "fewer than 100" in few.describe()
    with pytest.raises(ValueError, match="20 rows, 19 outcomes"):
        find_slices(frame.head(20), ~wrong[:19], range(19))


def test_photos_from_one_camera_folder_are_a_weak_slice():
    from mllife.evaluation.slices import image_slice_features

    rng = np.random.default_rng(4)
    n = 600
    camera = rng.choice(["cam1", "cam2", "cam3"], n)
    label = rng.choice(["cat", "dog"], n)
    paths = [f"data/photos/{lab}/{cam}/{i}.jpg" for i, (lab, cam) in
             enumerate(zip(label, camera, strict=True))]  # fmt: skip
    rows = pl.DataFrame({"path": paths, "label": label, "width": 640, "height": 480, "mode": "RGB"})
    features = image_slice_features(
        rows, rng.integers(0, 256, (n, 256)).astype(np.uint8), rng.uniform(0, 80, n)
    )
    assert {"brightness", "contrast", "colourfulness", "source folder"} <= set(features.columns)
    wrong = rng.random(n) < np.where(camera == "cam3", 0.4, 0.05)
    found = find_slices(features, ~wrong, rows["path"].to_list())
    assert found.slices[0].description == "source folder = cam3", found.slices[0].description
    flat = rows.with_columns(pl.col("path").str.replace(r"/cam\d", ""))
    plain = image_slice_features(flat, np.zeros((n, 256), dtype=np.uint8))
    assert plain["source folder"].null_count() == n  # no folder below the class: none


def test_every_run_reports_its_weak_spots(deployed_digits, capsys):
    config_path, outcome = deployed_digits
    report = config_path.parent / ".mllife" / "reports" / f"status-{outcome.run_id}.html"
    html = report.read_text()
    assert "Weak spots (slice discovery)" in html and "validation rows" in html
    assert main(["--config", str(config_path), "slices"]) == 0
    said = capsys.readouterr().out
    assert "no weak slice recorded" in said or "--from-slice" in said


def test_a_slice_becomes_a_known_problem_every_model_version_is_scored_on(tmp_path, capsys):
    from mllife.problems.registry import ProblemRegistry
    from mllife.problems.scoring import score_all
    from tests.serving import table_project

    setup = table_project(tmp_path / "p")
    config, store = setup["config"], setup["store"]
    table = pl.read_parquet(config.data_path)
    big = table.filter(pl.col("mean_radius") >= 17.0)
    weak = Slice((("mean_radius", ">= 17"),), big.height, 0.8, 0.7, 0.87, 0.95, 1e-4,
                 tuple(str(i) for i in big["id"]))  # fmt: skip
    record_slices(store, run_id="run-a", model_hash=setup["hashes"]["logreg"],
                  found=Slices([weak], table.height))  # fmt: skip
    assert main(["--config", str(config.path), "slices"]) == 0
    listed = capsys.readouterr().out
    assert "mean_radius >= 17" in listed and "--from-slice N" in listed
    assert main(["--config", str(config.path), "problems", "add", "big_cells",
                 "--from-slice", "1"]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert f"{big.height} pattern(s) from slice 1 (mean_radius >= 17)" in said, said
    spec = (config.problems_dir / "big_cells" / "problem.toml").read_text()
    assert "Weak spot found by slice discovery" in spec and 'source = "slice"' in spec
    classes = sorted({str(v) for v in setup["labels"]})
    result = score_all(config, store, new_models=[], classes=classes)
    assert result.patterns_added == big.height
    history = ProblemRegistry(config, store).history("big_cells")
    assert set(history["model_hash"]) == set(setup["hashes"].values())
    # a slice the latest run did not find, and a table with personal columns: refused
    assert main(["--config", str(config.path), "problems", "add", "x", "--from-slice", "9"]) == 2
    assert "no slice 9: the latest run found 1 slice(s)" in capsys.readouterr().err
    path = config.path
    path.write_text(path.read_text().replace('id = "id"\n', 'id = "id"\npii = ["mean_area"]\n'))
    assert main(["--config", str(path), "problems", "add", "y", "--from-slice", "1"]) == 2
    assert "pii columns (mean_area)" in capsys.readouterr().err
    assert json.loads(store.query("SELECT members FROM slices")["members"][0])[0] == weak.members[0]


def test_the_review_desk_keeps_a_weak_slice_as_a_known_problem(tmp_path):
    """The desk lists the latest run's weak slices; one click keeps one as a problem
    (driven in headless Chromium, as a reviewer would)."""
    from mllife.serve.keys import create_key
    from tests.browser import Browser
    from tests.serving import ServerProcess, table_project
    from tests.test_review import _click, _sign_in

    setup = table_project(tmp_path / "p")
    config, store = setup["config"], setup["store"]
    table = pl.read_parquet(config.data_path)
    small = table.filter(pl.col("mean_radius") < 10.0)
    weak = Slice((("mean_radius", "< 10"),), small.height, 0.7, 0.6, 0.8, 0.95, 1e-3,
                 tuple(str(i) for i in small["id"]))  # fmt: skip
    record_slices(store, run_id="run-b", model_hash=setup["hashes"]["logreg"],
                  found=Slices([weak], table.height))  # fmt: skip
    reviewer = create_key(store, "desk", routes=("review",))
    with ServerProcess(config.path) as server, Browser() as browser:
        _sign_in(browser, f"http://127.0.0.1:{server.port}/review/", reviewer)
        assert browser.evaluate("document.querySelector('#slices .rule').textContent") == (
            "mean_radius < 10"
        )
        browser.evaluate("document.querySelector('input[name=\"slice_problem:1\"]').value = 'tiny'")
        _click(browser, "button.keep-slice")
        flash = browser.evaluate("document.getElementById('flash').textContent")
    assert f"Added {small.height} pattern(s) from slice 1 (mean_radius < 10) to 'tiny'" in flash
    assert 'source = "slice"' in (config.problems_dir / "tiny" / "problem.toml").read_text()
