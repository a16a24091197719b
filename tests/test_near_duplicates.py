"""Near-duplicates (#45): a resized, re-encoded copy of a photo or a row typed again in
another split is a blocking leak naming both; found without comparing every pair."""

from __future__ import annotations

import hashlib
import io
import re

import numpy as np
import polars as pl
from PIL import Image

from mllife.data.near_duplicates import (
    MAX_BITS,
    _candidate_pairs,
    image_fingerprints,
    near_duplicate_images,
    near_duplicate_rows,
    searched_bits,
)


def _copy(path, size: int, quality: int) -> bytes:
    """``path`` upscaled to ``size`` pixels in colour and saved as JPEG: a copy no exact
    hash recognises."""
    image = Image.open(path).resize((size, size), Image.Resampling.BILINEAR).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_resized_reencoded_copies_are_found_and_distinct_digits_are_not(all_digits, tmp_path):
    files = sorted(all_digits.rglob("*.png"))
    originals = files[::90]  # 20 of them, every class
    for n, source in enumerate(originals):
        (tmp_path / f"copy{n}.jpg").write_bytes(_copy(source, (32, 64, 100)[n % 3], 60 + n))
    copies = sorted(tmp_path.glob("copy*.jpg"), key=lambda p: int(p.stem[4:]))
    paths = [str(p) for p in files + copies]
    sha = [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths]
    cache = tmp_path / "fingerprints.parquet"
    hashes, thumbnails, _ = image_fingerprints(paths, sha, root=tmp_path, cache=cache)
    pairs, distance = near_duplicate_images(hashes, thumbnails, max_distance=0.016)
    found = {(paths[i], paths[j]) for i, j in pairs.tolist()}
    expected = {(str(o), str(c)) for o, c in zip(originals, copies, strict=True)}
    assert found == expected  # every copy, and no two different digits (1,797 of them)
    assert (distance < 0.016).all()
    # the multi-index search misses no pair a comparison of all pairs finds
    apart = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    brute = {(i, j) for i, j in zip(*np.nonzero(np.triu(apart <= MAX_BITS, 1)), strict=True)}
    assert {tuple(p) for p in _candidate_pairs(hashes, MAX_BITS).tolist()} == brute
    # at a size where the blocks are wider: every pair within the searched distance
    rng = np.random.default_rng(0)
    many = rng.integers(0, 2**63, 6000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    for k in range(300):  # planted near pairs, 1 to 7 bits apart
        flips = rng.choice(64, size=1 + k % 7, replace=False)
        many[k + 3000] = many[k] ^ np.bitwise_or.reduce(np.uint64(1) << flips.astype(np.uint64))
    limit = searched_bits(len(many))
    assert limit == 7
    apart = np.bitwise_count(many[:, None] ^ many[None, :])
    brute = {(i, j) for i, j in zip(*np.nonzero(np.triu(apart <= limit, 1)), strict=True)}
    assert len(brute) >= 300
    assert {tuple(p) for p in _candidate_pairs(many, limit).tolist()} == brute
    # the cache answers the second time, the same
    again = image_fingerprints(paths, sha, root=tmp_path / "elsewhere", cache=cache)
    assert (again[0] == hashes).all() and (again[1] == thumbnails).all()


def test_rows_equal_once_normalised_are_near_duplicates():
    rows = pl.DataFrame(
        {
            "city": ["Paris", " paris ", "Lyon", "New  York", "new york", "Lyon"],
            "size": [1.0, 1.00001, 2.0, 3.5, 3.5, 2.5],
            "rooms": [3, 3, 4, 1, 1, 4],
        }
    )
    pairs = near_duplicate_rows(rows, ["city", "size", "rooms"], digits=4)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (3, 4)]
    assert near_duplicate_rows(rows, ["city", "size", "rooms"], digits=8).tolist() == [[3, 4]]


def test_a_copy_in_another_split_blocks_the_run(tmp_path, deployed_digits, capsys):
    """Copies of training digits added to a deployed project: those the split puts in
    validation or test fail the blocking no_leakage check, named with their original;
    nothing is trained and the champion stays. (A copy of the shared first run.)"""
    from assets.runtime.run import run_lifecycle
    from mllife.config.project import load_config
    from mllife.storage.store import Store
    from tests.conftest import copy_project

    config_path = copy_project(deployed_digits[0], tmp_path / "p")
    config = load_config(config_path)
    before = Store(config.store_path).champion()
    folder = config.data_path
    originals = sorted(folder.rglob("*.png"))[::60]  # 30 copies: some land outside train
    for n, source in enumerate(originals):
        (source.parent / f"copy_{n}.jpg").write_bytes(_copy(source, 64, 70))
    outcome = run_lifecycle(config_path, log_level="WARNING")
    lines = "\n".join(outcome.lines)
    assert not outcome.ok, lines
    assert "check splits.no_leakage FAILED" in lines, lines
    example = re.search(
        r"pair\(s\) across splits, e\.g\. (\S+) \((\w+)\) and (\S+) \((\w+)\)", lines
    )
    assert example, lines
    first, first_split, second, second_split = example.groups()
    assert first_split != second_split and {first[-4:], second[-4:]} == {".png", ".jpg"}
    assert first.startswith("data/digits/") and second.startswith("data/digits/")
    assert "near-duplicates: " in lines and "within one split" in lines, lines
    assert "models fit: none in this run" in lines, lines
    assert Store(config.store_path).champion() == before
    from mllife.cli import main

    capsys.readouterr()
    assert main(["--config", str(config_path), "status"]) == 0
    status = capsys.readouterr().out
    assert "data checks (split version" in status, status
    assert "  near-duplicates: 9 near-duplicate pair(s) across splits" in status, status
