import io

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from mllife.data.defaults import _digits, encode_gray_png, write_digits
from mllife.storage.dvc import directory_version, pinned_version
from tests.conftest import REPO


def test_png_encoder_round_trips_through_pillow():
    pixels = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    with Image.open(io.BytesIO(encode_gray_png(pixels))) as image:
        assert image.mode == "L" and image.size == (8, 6)
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_png_encoder_handles_more_than_one_deflate_block():
    pixels = (np.arange(300 * 300) % 251).astype(np.uint8).reshape(300, 300)
    with Image.open(io.BytesIO(encode_gray_png(pixels))) as image:
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_written_digits_match_sklearn(digits_folder):
    digits = load_digits()
    files = sorted(digits_folder.rglob("*.png"))
    assert len(files) == len(digits.target) == 1797
    with Image.open(digits_folder / "3" / "0003.png") as image:
        pixels = np.asarray(image).astype(int)
    assert digits.target[3] == 3
    np.testing.assert_array_equal(pixels, (digits.images[3].astype(int) * 255 + 8) // 16)


def test_digits_read_without_sklearn_equal_load_digits_and_so_does_the_fallback(
    monkeypatch, tmp_path
):
    digits = load_digits()
    pixels, labels = _digits()  # the CSV scikit-learn ships, read directly
    np.testing.assert_array_equal(pixels, digits.images)
    np.testing.assert_array_equal(labels, digits.target)
    # a scikit-learn that no longer ships the file where expected: load_digits itself
    fake = type("Spec", (), {"origin": str(tmp_path / "sklearn" / "__init__.py")})
    monkeypatch.setattr("importlib.util.find_spec", lambda name: fake)
    pixels, labels = _digits()
    np.testing.assert_array_equal(pixels, digits.images)
    np.testing.assert_array_equal(labels, digits.target)


def test_written_data_has_exactly_the_hash_pinned_in_data_dvc(digits_folder):
    # data.dvc pins data/, which holds digits/ alone.
    data = digits_folder.parent
    assert [p.name for p in data.iterdir()] == ["digits"]
    assert directory_version(data) == pinned_version(REPO / "data.dvc")


def test_write_refuses_to_overwrite(tmp_path):
    (tmp_path / "digits").mkdir()
    with pytest.raises(FileExistsError):
        write_digits(tmp_path / "digits")


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = encode_gray_png

    def failing(pixels):
        calls["n"] += 1
        if calls["n"] == 100:
            raise OSError("disk full")
        return real(pixels)

    monkeypatch.setattr("mllife.data.defaults.encode_gray_png", failing)
    with pytest.raises(OSError, match="disk full"):
        write_digits(tmp_path / "digits")
    assert list(tmp_path.iterdir()) == []
