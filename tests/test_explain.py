"""Explanations (#46): `mllife explain` gives one prediction's SHAP values per column for
a table row, and a saliency map for an image; bad inputs are clear errors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from PIL import Image

from mllife.cli import main


def test_a_row_is_explained_column_by_column(tmp_path, capsys):
    from mllife.evaluation.explain import explain_row
    from mllife.models.registry import champion_ref, load_model
    from tests.serving import table_project

    setup = table_project(tmp_path / "p")
    config, store = setup["config"], setup["store"]
    model = load_model(champion_ref(store), artifacts_dir=config.artifacts_dir, store=store)
    table = pl.read_parquet(config.data_path)
    row = setup["rows"][0]
    found = explain_row(model, row, table)
    assert found.predicted == model.predict([row])[0]
    assert len(found.attributions) == 30 and found.attributions[0][0] in row
    effects = [abs(e) for _, _, e in found.attributions]
    assert effects == sorted(effects, reverse=True) and effects[0] > 0
    # SHAP's promise: the values add up to the prediction's distance from the average
    total = sum(e for _, _, e in found.attributions)
    assert abs(found.base + total - found.confidence) < 0.02, (found.base, total)

    assert main(["--config", str(config.path), "explain", json.dumps(row)]) == 0
    said = capsys.readouterr().out
    assert "SHAP values" in said and f"prediction: {found.predicted}" in said
    broken = {k: v for k, v in row.items() if k != "mean_area"}
    assert main(["--config", str(config.path), "explain", json.dumps(broken)]) == 2
    assert "lacks column(s) ['mean_area']" in capsys.readouterr().err
    assert main(["--config", str(config.path), "explain", "no/such/file.png"]) == 2
    assert "no such file, and not a JSON row" in capsys.readouterr().err


def test_an_image_gets_a_saliency_map(tmp_path, deployed_digits, capsys):
    from mllife.config.project import load_config
    from mllife.evaluation.explain import explain_image
    from mllife.models.registry import ModelRef, champion_ref, load_model
    from mllife.storage.store import Store

    config_path = deployed_digits[0]
    config = load_config(config_path)
    image = sorted((config.data_path / "3").glob("*.png"))[0]
    output = tmp_path / "why.png"
    assert main(["--config", str(config_path), "explain", str(image), "--output", str(output)]) == 0
    said = capsys.readouterr().out
    assert "prediction: " in said and "saliency (" in said and str(output) in said
    picture = Image.open(output)
    assert picture.format == "PNG" and picture.width == 2 * picture.height
    store = Store(config.store_path)
    model = load_model(champion_ref(store), artifacts_dir=config.artifacts_dir, store=store)
    found = explain_image(model, image.read_bytes(), what=image.name)
    assert found.saliency.shape == (8, 8) and np.isclose(found.saliency.max(), 1.0)
    assert found.method == "occlusion"  # the champion: a logistic regression
    cnn = store.models().filter(pl.col("name") == "cnn")["model_hash"][0]
    ref = ModelRef.from_row(store.model_row(cnn))
    network = load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    by_gradients = explain_image(network, image.read_bytes(), what=image.name)
    assert by_gradients.method == "integrated gradients" and by_gradients.saliency.shape == (8, 8)
    assert by_gradients.saliency.max() == 1.0 and by_gradients.saliency.min() >= 0
    # the run's report shows what its errors leaned on, beside each misclassified image
    report = config.reports_dir / f"status-{deployed_digits[1].run_id}.html"
    assert "saliency: what it leaned on" in report.read_text()
    champion = champion_ref(store).model_hash
    kept = list((config.state_dir / "cache" / "saliency" / champion).glob("*.png"))
    assert 0 < len(kept) <= 12
    # a text file is no image, a row is no input of an image project: clear errors
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["--config", str(config_path), "explain", str(tmp_path / "notes.txt")]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert main(["--config", str(config_path), "explain", '{"a": 1}']) == 2
    assert "explain takes an image file" in capsys.readouterr().err
