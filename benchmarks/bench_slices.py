"""Slice discovery at size, beside SliceLine alone, same run.

    python benchmarks/bench_slices.py [--rows 1000000] [--columns 30] [--images 20000]

1. **Table**: ``--rows`` rows x ``--columns`` columns (two thirds numbers, a third
   categories with 3-8 values) and a planted weak spot (two conditions, errors 4x as
   often inside). mllife's ``find_slices`` (binning, SliceLine, a Fisher test per
   candidate, Benjamini-Hochberg) beside ``sliceline.Slicefinder.fit`` alone on the same
   binned rows it searches (all of them up to 20,000, a seeded sample beyond: SliceLine
   alone costs ~0.17 ms and ~66 KB per row of 30 columns here, so ~170 s and ~60 GB on
   1M rows), time and peak memory; target <= 10 s on this machine. Whether the planted
   slice comes first.
2. **Images**: the metadata of ``--images`` images (brightness, contrast, size, aspect,
   colour mode; dark images wrong 3x as often), the same comparison.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._measure import in_exact_rss_child, peak_extra_bytes, timed  # noqa: E402


def _table(rows: int, columns: int, rng) -> tuple[pl.DataFrame, np.ndarray, str]:
    data = {}
    for j in range(columns):
        if j % 3 == 2:
            data[f"c{j}"] = rng.choice([f"v{k}" for k in range(3 + j % 6)], rows)
        else:
            data[f"x{j}"] = rng.normal(size=rows)
    frame = pl.DataFrame(data)
    inside = (frame["x0"].to_numpy() > 0.85) & (frame["c2"].to_numpy() == "v0")
    wrong = rng.random(rows) < np.where(inside, 0.32, 0.08)
    return frame, wrong, "x0 >= "


def _images(count: int, rng) -> tuple[pl.DataFrame, np.ndarray, str]:
    from mllife.evaluation.slices import image_slice_features

    thumbnails = rng.integers(0, 256, size=(count, 256)).astype(np.uint8)
    dark = rng.random(count) < 0.2
    thumbnails[dark] //= 4
    sides = rng.choice([224, 256, 320, 480, 640], size=(count, 2))
    rows = pl.DataFrame({"width": sides[:, 0], "height": sides[:, 1],
                         "mode": rng.choice(["RGB", "L"], count, p=[0.9, 0.1])})  # fmt: skip
    wrong = rng.random(count) < np.where(dark, 0.24, 0.08)
    return image_slice_features(rows, thumbnails), wrong, "brightness < "


def measure(name: str, frame: pl.DataFrame, wrong: np.ndarray, expect: str, *, memory: bool):
    from sliceline.slicefinder import Slicefinder

    from mllife.evaluation.slices import (
        CANDIDATES,
        MIN_SIZE,
        _conditions,
        find_slices,
        search_rows,
    )

    keys = [str(i) for i in range(frame.height)]
    ours = lambda: find_slices(frame, ~wrong, keys)  # noqa: E731
    codes, _, _ = _conditions(frame)
    n = frame.height
    sample = search_rows(n)  # the rows find_slices hands SliceLine
    searched, errors = codes[sample], wrong[sample].astype(int)

    def alone():
        Slicefinder(alpha=0.95, k=CANDIDATES, max_l=2, min_sup=MIN_SIZE, verbose=False).fit(
            searched, errors
        )

    if memory:
        print(f"{name}_memory {peak_extra_bytes(ours)} {peak_extra_bytes(alone)}")
        return
    ours()  # imports and first-call costs out of the timing
    found, mine = timed(ours)
    _, bare = timed(alone)
    first = found.slices[0].description if found.slices else "none"
    verdict = "found first" if expect in first else "NOT first"
    print(
        f"{name}, {n:,} rows: mllife find_slices {mine:.2f} s, SliceLine alone {bare:.2f} s"
        f" (on the {len(searched):,} rows it searches) = {mine / bare:.2f}x;"
        f" {len(found.slices)} slices kept, first: {first!r}"
        f" (the planted one, {expect}...: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=30)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cases = {
        "table": lambda: _table(args.rows, args.columns, np.random.default_rng(0)),
        "images": lambda: _images(args.images, np.random.default_rng(1)),
    }
    for name, make in cases.items():
        frame, wrong, expect = make()
        measure(name, frame, wrong, expect, memory=args.memory_only)
    if args.memory_only:
        return
    for line in in_exact_rss_child(["--memory-only"]).splitlines():
        name, ours, bare = line.split()
        ours_mib, bare_mib = int(ours) / 2**20, int(bare) / 2**20
        print(f"{name.removesuffix('_memory')}: peak memory added: mllife {ours_mib:.0f} MiB,"
              f" SliceLine alone {bare_mib:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
