"""`mllife init` on a large image folder and a large table, against the floor of what
it must do anyway: copy the data into the project and `dvc add` it (git init and dvc
init included), measured in the same run.

    python -m benchmarks.bench_init [--images 10000] [--rows 1000000]

Target (issue "Your own project in one command"): init finishes in seconds on 10,000
images or a 1 M-row table. Prints the wall time of each and its ratio to the floor.
The data is synthetic (small colour JPEGs in 4 classes; a table of 20 numeric columns
and a label), written once per run into a temporary folder. Run it alone.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl


def write_images(folder: Path, n: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        label = f"class_{i % 4}"
        (folder / label).mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / label / f"{i:06d}.jpg", quality=80)


def write_table(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    columns = {f"x{j}": rng.normal(size=rows) for j in range(20)}
    columns["species"] = rng.choice(["a", "b", "c"], rows)
    pl.DataFrame(columns).write_csv(path)


def floor_seconds(source: Path, work: Path) -> float:
    """Copy into data/, git init, dvc init, dvc add data: what init cannot skip."""
    root = work / "floor"
    started = time.perf_counter()
    (root / "data").mkdir(parents=True)
    if source.is_dir():
        shutil.copytree(source, root / "data" / source.name)
    else:
        shutil.copy2(source, root / "data" / source.name)
    dvc = [sys.executable, "-m", "dvc"]
    commands = (
        ["git", "init", "-q"],
        [*dvc, "init", "-q"],
        [*dvc, "config", "cache.type", "hardlink,copy"],  # as init sets it
        [*dvc, "add", "-q", "data"],
    )
    for command in commands:
        subprocess.run(command, cwd=root, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(root)
    return seconds


def init_seconds(work: Path, **kwargs) -> float:
    from mllife.scaffold import init_project

    started = time.perf_counter()
    init_project(work / "project", **kwargs)
    seconds = time.perf_counter() - started
    shutil.rmtree(work / "project")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = work / "photos"
        write_images(photos, args.images)
        table = work / "table.csv"
        write_table(table, args.rows)
        for what, source, kwargs in (
            (f"{args.images} images", photos, {"images": photos}),
            (f"{args.rows} rows", table, {"table": table, "target": "species"}),
        ):
            floor = floor_seconds(source, work)
            took = init_seconds(work, **kwargs)
            print(
                f"mllife init, {what}: {took:.2f} s; floor (copy + git/dvc init + dvc add)"
                f" {floor:.2f} s; ratio {took / floor:.2f}x"
            )


if __name__ == "__main__":
    main()
