"""The data stage's stat caches: an unchanged file is not read again, every change
(edit, addition, removal, rename) is seen, the version always equals DVC's own hash,
and a damaged cache is rebuilt with a warning, never trusted."""

from __future__ import annotations

import os

import numpy as np
import pytest

import mllife.data.images as images
from mllife.config.project import load_config
from mllife.data.defaults import encode_gray_png
from mllife.data.stage import current_data_version, read_raw
from mllife.storage.dvc import directory_version

CONFIG = """
[data]
kind = "images"
path = "data/images"

[[candidates]]
name = "logreg"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
"""


def _png(seed: int) -> bytes:
    return encode_gray_png(np.random.default_rng(seed).integers(0, 255, (8, 8), dtype=np.uint8))


@pytest.fixture
def config(tmp_path):
    (tmp_path / "mllife.toml").write_text(CONFIG)
    config = load_config(tmp_path / "mllife.toml")
    for i in range(30):
        target = config.data_path / f"c{i % 3}" / f"{i:03d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_png(i))
    return config


@pytest.fixture
def reads(monkeypatch):
    """The files the scan actually opened."""
    opened: list[str] = []
    describe = images._describe_file

    def counting(file, *args):
        opened.append(file.name)
        return describe(file, *args)

    monkeypatch.setattr(images, "_describe_file", counting)
    return opened


def _dvc_hash(config) -> str:
    return directory_version(config.data_path).md5  # DVC's own, no cache


def test_unchanged_files_are_not_read_again_and_changes_are_seen(config, reads):
    first = read_raw(config)
    assert len(reads) == 30 and first.data_version == _dvc_hash(config)
    reads.clear()
    again = read_raw(config)
    assert reads == [] and again.data_version == first.data_version
    assert again.manifest.equals(first.manifest)
    assert current_data_version(config) == first.data_version

    folder = config.data_path
    (folder / "c0" / "000.png").write_bytes(_png(100))  # edited
    (folder / "c1" / "new.png").write_bytes(_png(101))  # added
    (folder / "c2" / "002.png").unlink()  # removed
    os.rename(folder / "c1" / "001.png", folder / "c2" / "001.png")  # moved to another class
    assert current_data_version(config) == _dvc_hash(config) != first.data_version
    reads.clear()
    changed = read_raw(config)
    # the edited, the added and the moved file (its path, so its label, changed)
    assert sorted(reads) == ["000.png", "001.png", "new.png"]
    assert changed.data_version == _dvc_hash(config)
    fresh = images.scan_image_folder(folder, root=config.root)  # no cache at all
    assert changed.manifest.equals(fresh)
    assert "data/images/c2/001.png" in changed.manifest["path"].to_list()


def test_a_damaged_cache_is_rebuilt_with_a_warning(config, reads, capsys):
    first = read_raw(config)
    cache = config.state_dir / "cache"
    (cache / "raw-manifest.parquet").write_bytes(b"PAR1 not parquet at all")
    (cache / "raw-snapshot.json").write_text("{")
    reads.clear()
    again = read_raw(config)
    assert len(reads) == 30  # nothing trusted: every file read again
    assert "ignoring the stat cache" in capsys.readouterr().err
    assert again.manifest.equals(first.manifest) and again.data_version == first.data_version
