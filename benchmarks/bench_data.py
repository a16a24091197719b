"""The data stage at scale: manifest + hash + contract + clean + split.

    python benchmarks/bench_data.py [--rows 1000000] [--columns 30] [--images 100000]

Table target (issue 4): 1 M rows x 30 columns in <= 10 s, peak memory <= 3x the raw
data. Image path: 100 k small synthetic PNGs, time and peak memory printed. The baseline
named in the output is reading the raw data alone (polars.read_parquet; for images,
reading every file's bytes), measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks._measure import in_exact_rss_child, peak_extra_bytes
from mllife.config.project import load_config
from mllife.data.defaults import encode_gray_png
from mllife.data.stage import clean, clean_contract, make_splits, raw_contract, read_raw
from mllife.storage.store import Store

TABLE_CONFIG = """
[data]
kind = "table"
path = "table.parquet"
target = "target"
[[candidates]]
name = "lr"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
"""
IMAGE_CONFIG = """
[data]
path = "images"
default = "none"
[[candidates]]
name = "lr"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
"""


def make_table(folder: Path, rows: int, columns: int) -> Path:
    rng = np.random.default_rng(0)
    data = {f"f{i}": rng.normal(size=rows) for i in range(columns)}
    data["target"] = rng.choice(["a", "b", "c"], size=rows)
    path = folder / "table.parquet"
    pl.DataFrame(data).write_parquet(path)
    (folder / "mllife.toml").write_text(TABLE_CONFIG)
    return path


def make_images(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    root = folder / "images"
    for label in ("a", "b", "c", "d"):
        (root / label).mkdir(parents=True)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
        (root / "abcd"[i % 4] / f"{i:06d}.png").write_bytes(encode_gray_png(pixels))
    (folder / "mllife.toml").write_text(IMAGE_CONFIG)
    return root


def data_stage(folder: Path) -> dict[str, float]:
    config = load_config(folder / "mllife.toml")
    store = Store(folder / "store.duckdb")
    timings = {}
    clock = time.perf_counter()
    raw = read_raw(config)
    timings["manifest+hash"] = time.perf_counter() - clock
    clock = time.perf_counter()
    assert raw_contract(config, raw).passed
    timings["contract"] = time.perf_counter() - clock
    clock = time.perf_counter()
    data = clean(config, raw)
    assert clean_contract(config, data).passed
    timings["clean+contract"] = time.perf_counter() - clock
    clock = time.perf_counter()
    make_splits(config, data, store=store)
    timings["split (+store)"] = time.perf_counter() - clock
    return timings


def report(name: str, baseline_name: str, baseline: float, timings: dict[str, float]) -> None:
    total = sum(timings.values())
    parts = ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
    print(f"{name}: {total:.2f} s ({parts})")
    print(f"  baseline {baseline_name}: {baseline:.2f} s; data stage = {total / baseline:.1f}x it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mllife-bench-data-"))
    try:
        if args.memory_only:
            memory(args, folder)
            return
        path = (
            make_table(folder / "table", args.rows, args.columns)
            if ((folder / "table").mkdir() or True)
            else None
        )
        clock = time.perf_counter()
        pl.read_parquet(path)
        baseline = time.perf_counter() - clock
        report(
            f"table {args.rows:,} rows x {args.columns} columns (target <= 10 s)",
            "polars.read_parquet",
            baseline,
            data_stage(folder / "table"),
        )
        (folder / "images").mkdir()
        root = make_images(folder / "images", args.images)
        clock = time.perf_counter()
        for file in root.rglob("*.png"):
            file.read_bytes()
        baseline = time.perf_counter() - clock
        report(
            f"images {args.images:,} synthetic 8x8 PNGs",
            "reading every file's bytes",
            baseline,
            data_stage(folder / "images"),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(in_exact_rss_child(["--memory-only"]), end="")


def memory(args: argparse.Namespace, folder: Path) -> None:
    (folder / "table").mkdir()
    path = make_table(folder / "table", args.rows, args.columns)
    raw_bytes = pl.read_parquet(path).estimated_size()
    data_stage(folder / "table")  # warm-up: imports and one-time set-up are not counted
    shutil.rmtree(folder / "table" / "store.duckdb", ignore_errors=True)
    (folder / "table" / "store.duckdb").unlink(missing_ok=True)
    peak = peak_extra_bytes(lambda: data_stage(folder / "table"))
    print(
        f"memory: table data stage peak {peak / 2**20:.0f} MiB = {peak / raw_bytes:.2f}x the"
        f" raw data in memory ({raw_bytes / 2**20:.0f} MiB) (target <= 3x)"
    )
    (folder / "images").mkdir()
    make_images(folder / "images", min(args.images, 20_000))
    peak = peak_extra_bytes(lambda: data_stage(folder / "images"))
    print(
        f"memory: image data stage ({min(args.images, 20_000):,} images) peak"
        f" {peak / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
