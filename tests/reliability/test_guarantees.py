"""The guarantees hold on every run, not only the first: each reproduction of the issue
"Guarantees that hold on every run" as a test (the planner's rule has its own file,
test_memo_rule.py; links in the data folder are in test_hostile_files.py, feedback
binding and swapped step outputs in test_probed_faults.py)."""

from __future__ import annotations

import shutil
import struct
import zlib

import numpy as np
import polars as pl
import pytest
import torch

from mllife import DataError, PromotionError
from mllife.cli import main as cli
from mllife.config.project import load_config
from mllife.data.stage import clean, make_splits, read_raw
from mllife.models.embedding_model import EmbeddingCache
from mllife.preprocess.images import ImagePreprocessor
from mllife.preprocess.pixels import PixelCache, PixelSet
from mllife.problems.fingerprint import problems_version
from mllife.problems.registry import ProblemRegistry
from mllife.promotion.rollout import (
    promote_staged,
    record_verdict,
    rollout_history,
    stage,
    staged_challenger,
)
from mllife.scaffold import init_project
from mllife.storage.store import Store
from tests.conftest import make_project
from tests.serving import table_project

# -- a refused challenger is never served nor promoted ----------------------------------


def test_only_a_model_whose_latest_verdict_passed_is_staged_or_promoted(tmp_path):
    project = table_project(tmp_path / "p", serving='[serving.rollout]\nmode = "shadow"')
    store, hashes, config = project["store"], project["hashes"], project["config"]
    small = hashes["logreg_small"]
    # never faced the gates (a baseline, a model trained by hand): not staged, by any path
    with pytest.raises(PromotionError, match="never faced the promotion gates"):
        stage(store, model_hash=small, name="logreg_small", reason="x")
    assert cli(["--config", str(config.path), "stage", small[:10], "--reason", "x"]) != 0
    assert staged_challenger(store) is None

    # staged while it passed; a later run refuses it: withdrawn at once, in that write
    record_verdict(store, model_hash=small, name="logreg_small", passed=True,
                   summary="passed every gate", run_id="run-1")  # fmt: skip
    staged = stage(store, model_hash=small, name="logreg_small", reason="passed")
    record_verdict(store, model_hash=small, name="logreg_small", passed=False,
                   summary="test accuracy 0.9665 < minimum 0.9999", run_id="run-2")  # fmt: skip
    assert staged_challenger(store) is None
    history = rollout_history(store)
    assert history["state"].to_list() == ["withdrawn", "staged"]
    assert "refused by the promotion policy" in history["reason"][0]
    assert "0.9665" in history["reason"][0]

    # the rollout's promotion re-checks the newest verdict in its own transaction
    champion = store.champion()
    with store.writing() as conn:  # staged again behind the check's back
        conn.execute(
            "INSERT INTO rollouts (model_hash, name, state, reason, evidence, run_id,"
            " created_at) VALUES (?, 'logreg_small', 'staged', 'x', NULL, NULL, now())",
            [small],
        )
    with pytest.raises(PromotionError, match="refused by the promotion policy"):
        promote_staged(store, staged, reason="rule met", evidence=None, run_id=None)
    assert store.champion() == champion


# -- a known problem added, edited or removed is seen ------------------------------------


def test_the_problems_version_changes_with_every_addition_edit_and_removal(tmp_path, digits_folder):
    config = load_config(make_project(tmp_path / "p", digits_folder))
    store = Store(config.store_path)
    registry = ProblemRegistry(config, store)
    seen = [problems_version(config, store)]
    assert problems_version(config, store) == seen[0]  # stable while nothing changes
    registry.add_problem("hats", description="misreads hats")  # `mllife problems add`
    seen.append(problems_version(config, store))
    toml = config.problems_dir / "one_vs_seven" / "problem.toml"
    toml.write_text(toml.read_text().replace("nudged", "shifted"))  # an edited file
    seen.append(problems_version(config, store))
    shutil.rmtree(config.problems_dir / "inverted_colours")  # a folder removed
    seen.append(problems_version(config, store))
    assert cli(["--config", str(config.path), "problems", "remove", "hats"]) == 0
    seen.append(problems_version(config, store))
    assert len(set(seen)) == len(seen), seen


# -- mllife init and the data stage ------------------------------------------------------


def test_init_keeps_data_derived_text_out_of_the_config_and_bombs_count_as_unreadable(
    tmp_path, digits_folder
):
    # a column name holding line breaks and TOML lands only in a comment
    column = 'size\n[serving]\nhost = "0.0.0.0"'
    table = pl.DataFrame({column: list(range(40)), "target": ["a", "b"] * 20})
    table.write_csv(tmp_path / "t.csv")
    root = tmp_path / "table_project"
    init_project(root, table=tmp_path / "t.csv", target="target")
    config = load_config(root / "mllife.toml")
    assert config.serving.host == "127.0.0.1"
    text = (root / "mllife.toml").read_text()
    assert "\nhost =" not in text and "\\u000a" in text

    # a PNG header claiming 40000 x 40000 pixels among the images: a file that cannot
    # be read (the run's cleaning names it), not a traceback
    images = tmp_path / "images"
    for label in ("0", "1", "7"):
        shutil.copytree(digits_folder / label, images / label)
    chunk = b"IHDR" + struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
    (images / "0" / "bomb.png").write_bytes(bomb + struct.pack(">I", zlib.crc32(chunk)))
    result = init_project(tmp_path / "image_project", images=images)
    assert load_config(result.root / "mllife.toml").data.classes == ("0", "1", "7")


@pytest.mark.parametrize("rows", [2, 10])
def test_a_table_too_small_to_split_is_refused_by_the_data_stage(tmp_path, rows):
    from mllife.data.split import split_namespace

    frame = pl.DataFrame({"x": [float(i) for i in range(rows)], "target": ["a", "b"] * (rows // 2)})
    frame.write_csv(tmp_path / "t.csv")
    (tmp_path / "mllife.toml").write_text(
        '[data]\nkind = "table"\npath = "t.csv"\ntarget = "target"\n[[candidates]]\n'
        'name = "lr"\nkind = "sklearn"\nestimator = "sklearn.linear_model.LogisticRegression"\n'
    )
    config = load_config(tmp_path / "mllife.toml")
    store = Store(config.store_path)
    with pytest.raises(DataError, match=r"without validation or test rows: 'a' \(\d+ rows") as e:
        make_splits(config, clean(config, read_raw(config)), store=store)
    assert "Each class needs about 10 rows or more" in str(e.value)
    assert not store.split_assignments(split_namespace(config.split))  # nothing recorded


# -- the caches prove their content ------------------------------------------------------


def test_a_cache_entry_changed_on_disk_is_rebuilt_with_a_warning_naming_it(
    tmp_path, digits_folder, caplog
):
    import hashlib

    files = sorted(digits_folder.rglob("*.png"))[::60]
    rows = pl.DataFrame({
        "path": [str(f) for f in files],
        "sha256": [hashlib.sha256(f.read_bytes()).hexdigest() for f in files],
    })  # fmt: skip
    pre = ImagePreprocessor(size=16, channels=1)
    cache = PixelCache(tmp_path / "cache")
    pixels = PixelSet(rows, root=tmp_path, preprocessor=pre, cache=cache).all()
    entry = cache.path(rows["sha256"][0], pre.settings_key)
    data = bytearray(entry.read_bytes())
    data[-48:] = b"\xff" * 48  # the first image's last pixels made white on disk
    entry.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="mllife.cache"):
        again = PixelSet(rows, root=tmp_path, preprocessor=pre, cache=cache)
        assert torch.equal(again.all(), pixels)  # never the edited pixels
    assert again.decoded == 1  # that one entry decoded again, the others read
    assert str(entry) in caplog.text and "does not match its content digest" in caplog.text

    embeddings = EmbeddingCache(tmp_path / "embeddings")
    embeddings.put("net", "s", "ab" * 32, np.arange(4, dtype=np.float32))
    path = embeddings.path("net", "s", "ab" * 32)
    np.save(path, np.zeros(4, dtype=np.float32))  # rewritten by another program
    caplog.clear()
    with caplog.at_level("WARNING", logger="mllife.cache"):
        assert embeddings.get("net", "s", "ab" * 32) is None  # a miss: computed again
    assert str(path) in caplog.text and not path.exists()
