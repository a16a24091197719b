"""The data stage on unchanged data: raw_data and the new-data sensor against a full
re-read of every file, same run (issue 22).

    python benchmarks/bench_stat_cache.py [--files 100000] [--gb 10]

raw_data reads a folder of ``--files`` small PNGs twice through ``read_raw`` (what the
asset calls): once cold (every file read, hashed, decoded; the caches filled) and once
warm (nothing changed). The baseline is the same scan and data version with no cache:
every file read again, as before the stat cache. Target: warm <= 2 s at 100,000 files.
The sensor's tick is ``current_data_version`` on a folder of ``--gb`` GB (sparse files,
so the disk is not filled): target < 1 s when unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mllife.config.project import load_config  # noqa: E402
from mllife.data.images import scan_image_folder  # noqa: E402
from mllife.data.stage import current_data_version, read_raw  # noqa: E402
from mllife.storage.dvc import data_version  # noqa: E402

CONFIG = """
[data]
kind = "images"
path = "data/images"

[[candidates]]
name = "logreg"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
"""


def write_images(folder: Path, n: int) -> None:
    import numpy as np

    from mllife.data.defaults import encode_gray_png

    rng = np.random.default_rng(0)
    for i in range(n):
        target = folder / f"c{i % 10}" / f"{i:06d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(encode_gray_png(rng.integers(0, 255, (8, 8), dtype=np.uint8)))


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--gb", type=float, default=10.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-stat-cache-"))
    (root / "mllife.toml").write_text(CONFIG)
    config = load_config(root / "mllife.toml")
    write_images(config.data_path, args.files)

    def full() -> None:  # what raw_data did before: every file read twice over
        scan_image_folder(config.data_path, root=config.root)
        data_version(config.data_path, root=config.root)

    baseline = timed(full)
    cold = timed(lambda: read_raw(config))
    warm = min(timed(lambda: read_raw(config)) for _ in range(3))
    print(
        f"raw_data on {args.files:,} unchanged files: {warm:.2f} s with the stat cache"
        f" (cold, filling it: {cold:.2f} s); baseline full re-read {baseline:.2f} s:"
        f" {baseline / warm:.1f}x faster (target <= 2 s)"
    )
    tick = min(timed(lambda: current_data_version(config)) for _ in range(3))
    print(f"new-data sensor tick on the same {args.files:,} unchanged files: {tick:.2f} s")

    big = root / "big"
    (big / "mllife.toml").parent.mkdir()
    (big / "mllife.toml").write_text(CONFIG)
    sparse = big / "data" / "images" / "c0"
    sparse.mkdir(parents=True)
    size = 256 * 2**20
    for i in range(round(args.gb * 2**30 / size)):
        with open(sparse / f"{i:04d}.png", "wb") as handle:
            handle.truncate(size)  # sparse: no disk space, read as zeros
    big_config = load_config(big / "mllife.toml")
    first = timed(lambda: current_data_version(big_config))
    tick = min(timed(lambda: current_data_version(big_config)) for _ in range(3))
    print(
        f"new-data sensor tick on an unchanged {args.gb:g} GB folder: {tick:.3f} s"
        f" (the first tick hashed it all: {first:.1f} s) (target < 1 s)"
    )
    os.system(f"rm -rf {root}")


if __name__ == "__main__":
    main()
