import shutil

import pytest

from mllife import DataError
from mllife.data.contracts import check_contract, clean_image_schema, raw_image_schema
from mllife.data.images import clean_images, infer_classes, scan_image_folder

CLASSES = tuple(str(i) for i in range(10))


@pytest.fixture
def folder(tmp_path, digits_folder):
    target = tmp_path / "digits"
    shutil.copytree(digits_folder, target)
    return target


def test_scan_reads_every_file_with_hash_and_size(folder, tmp_path):
    manifest = scan_image_folder(folder, root=tmp_path)
    assert manifest.height == 1797
    row = manifest.filter(manifest["path"] == "digits/3/0003.png").row(0, named=True)
    assert row["label"] == "3" and row["width"] == 8 and row["mode"] == "L"
    assert len(row["sha256"]) == 64 and row["error"] is None
    assert check_contract(manifest, raw_image_schema(CLASSES)).passed


def test_cleaning_reports_every_drop_with_its_reason(folder, tmp_path):
    (folder / "3" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (folder / "3" / "empty.png").write_bytes(b"")
    shutil.copy(folder / "4" / "0004.png", folder / "4" / "copy.png")  # duplicate
    shutil.copy(folder / "5" / "0005.png", folder / "6" / "moved.png")  # conflicting label
    shutil.copy(folder / "0" / "0000.png", folder / "stray.png")  # no class folder
    manifest = scan_image_folder(folder, root=tmp_path)
    clean, dropped = clean_images(manifest)
    reasons = dict(zip(dropped["path"].to_list(), dropped["reason"].to_list(), strict=True))
    assert reasons["digits/3/corrupt.png"].startswith("unreadable image")
    assert reasons["digits/3/empty.png"] == "empty file (0 bytes)"
    assert reasons["digits/4/copy.png"] == "exact duplicate of digits/4/0004.png"
    assert reasons["digits/5/0005.png"].startswith("conflicting labels for identical content: 5, 6")
    assert reasons["digits/6/moved.png"].startswith("conflicting labels")
    assert reasons["digits/stray.png"].startswith("not inside a class folder")
    assert "digits/4/0004.png" in clean["path"].to_list()
    assert clean.height + dropped.height == manifest.height
    assert check_contract(clean, clean_image_schema(CLASSES)).passed


def test_undeclared_class_fails_the_contract_naming_the_file(folder, tmp_path):
    (folder / "x").mkdir()
    shutil.copy(folder / "1" / "0001.png", folder / "x" / "odd.png")
    result = check_contract(scan_image_folder(folder, root=tmp_path), raw_image_schema(CLASSES))
    assert not result.passed
    assert any(e.get("path") == "digits/x/odd.png" for e in result.examples)
    assert sum(result.counts.values()) == 1


def test_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*mllife data init"):
        scan_image_folder(tmp_path / "nowhere", root=tmp_path)


def test_folder_without_images_is_an_error(tmp_path):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        scan_image_folder(tmp_path / "empty", root=tmp_path)


def test_infer_classes_ignores_hidden_folders(folder):
    (folder / ".cache").mkdir()
    assert infer_classes(folder) == CLASSES
