"""The data-quality searches at size, each beside its baseline in the same run.

    python benchmarks/bench_data_quality.py [--rows 1000000] [--images 20000]

1. **Label issues, table**: ``--rows`` rows x 30 numeric columns, two classes with 5% of
   labels flipped. mllife's search (``find_label_issues``: out-of-fold logistic
   regression, five folds, then confident learning) beside
   ``cleanlab.filter.find_label_issues`` alone on the same out-of-fold probabilities
   (the part mllife does not add), with the peak memory each adds, and precision/recall
   on the flipped labels.
2. **Label issues, images**: ``--images`` PNG files (the digits, repeated with pixel
   noise), 5% of labels flipped: the whole search (``label_issues_in``: decoding each
   file to a 16x16 thumbnail, then the same) beside cleanlab alone.
3. **Near-duplicates, table**: the same ``--rows`` rows plus 1% planted copies (numbers
   off by a millionth, a text column re-cased and re-spaced): ``near_duplicate_rows``
   (a group-by) beside a brute-force pairwise comparison on a sample, scaled to the
   full size (pairs grow as n^2), with peak memory and recall of the planted pairs.
4. **Near-duplicates, images**: ``--images`` distinct digits (each rotated, scaled and
   shifted at random, 32 px) with 1% planted copies (upscaled to 64 px, saved as
   JPEG): fingerprinting (decode once, cached), then the multi-index search, at a
   quarter, half and all of the images (sub-quadratic: time grows far less than 4x
   per doubling), beside brute force over all pairs on a sample, scaled; recall and
   false pairs against the planted copies.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._measure import in_exact_rss_child, peak_extra_bytes, timed  # noqa: E402


def _flip(labels: np.ndarray, classes: int, rng) -> tuple[np.ndarray, set[int]]:
    flipped = rng.choice(len(labels), size=len(labels) // 20, replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, classes, len(flipped))) % classes
    return noisy, set(flipped.tolist())


def _score(found, keys_to_index: dict, truth: set[int]) -> str:
    suspected = {keys_to_index[i.key] for i in found.issues}
    hit = len(suspected & truth)
    return f"precision {hit / max(len(suspected), 1):.2f}, recall {hit / len(truth):.2f}"


def table(rows: int, *, memory: bool) -> None:
    import cleanlab.filter
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from mllife.evaluation.label_issues import find_label_issues

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 30)).astype(np.float32)
    truth = (x[:, :5].sum(axis=1) > 0).astype(int)
    labels, flipped = _flip(truth, 2, rng)
    keys = [str(i) for i in range(rows)]
    run = lambda: find_label_issues(x, labels, keys)  # noqa: E731
    proba = cross_val_predict(
        LogisticRegression(max_iter=2000), x, labels, cv=StratifiedKFold(5), method="predict_proba"
    )
    alone = lambda: cleanlab.filter.find_label_issues(  # noqa: E731
        labels, proba, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    if memory:
        print(f"table_memory {peak_extra_bytes(run)} {peak_extra_bytes(alone)}")
        return
    found, ours = timed(run)
    _, bare = timed(alone)
    index = {k: i for i, k in enumerate(keys)}
    print(
        f"table {rows:,} rows x 30: mllife {ours:.1f} s, cleanlab alone {bare:.1f} s"
        f" (on given probabilities); {_score(found, index, flipped)}"
    )


def images(count: int) -> None:
    import cleanlab.filter
    from PIL import Image
    from sklearn.datasets import load_digits

    from mllife.config.project import load_config
    from mllife.data.near_duplicates import project_image_fingerprints
    from mllife.evaluation.label_issues import label_issues_in

    rng = np.random.default_rng(1)
    digits = load_digits()
    root = Path(tempfile.mkdtemp(prefix="bench-dq-"))
    paths, truth = [], []
    started = time.perf_counter()
    for i in range(count):
        j = i % len(digits.images)
        pixels = digits.images[j] * 16 + rng.normal(0, 6, (8, 8))
        path = f"data/{digits.target[j]}/{i:06d}.png"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / path)
        paths.append(path)
        truth.append(int(digits.target[j]))
    labels, flipped = _flip(np.array(truth), 10, rng)
    print(f"{count:,} images written in {time.perf_counter() - started:.1f} s")
    (root / "mllife.toml").write_text(
        '[data]\npath = "data"\n[[candidates]]\nname = "m"\nkind = "sklearn"\n'
        'estimator = "sklearn.linear_model.LogisticRegression"\n'
    )
    config = load_config(root / "mllife.toml")
    sha = [hashlib.sha256((root / p).read_bytes()).hexdigest() for p in paths]
    rows = pl.DataFrame({"path": paths, "label": [str(v) for v in labels], "sha256": sha})
    found, ours = timed(lambda: label_issues_in(config, rows, None))
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    features = project_image_fingerprints(config, rows).thumbnails / 255.0  # cached
    proba = cross_val_predict(
        LogisticRegression(max_iter=2000), features, labels, cv=StratifiedKFold(5),
        method="predict_proba",
    )  # fmt: skip
    _, bare = timed(
        lambda: cleanlab.filter.find_label_issues(
            labels, proba, return_indices_ranked_by="self_confidence", n_jobs=1
        )
    )
    index = {p: i for i, p in enumerate(paths)}
    print(
        f"images {count:,}: mllife {ours:.1f} s (decoding, out-of-fold fits, search),"
        f" cleanlab alone {bare:.2f} s; {_score(found, index, flipped)}"
    )


def table_near_duplicates(rows: int, *, memory: bool) -> None:
    from mllife.data.near_duplicates import near_duplicate_rows

    rng = np.random.default_rng(2)
    planted = rows // 100
    x = rng.normal(size=(rows, 30))
    city = rng.choice(["Paris", "Lyon", "New York", "Oslo"], rows).astype(object)
    source = rng.choice(rows - planted, planted, replace=False)
    # planted copies: the text re-cased and re-spaced; the first half with the same
    # numbers (the row typed again), the second half with every number off by a
    # millionth (re-computed, or written with other rounding)
    x[rows - planted :] = x[source]
    x[rows - planted // 2 :] *= 1 + 1e-6
    city[rows - planted :] = [f"  {c.upper()} " for c in city[source]]
    frame = pl.DataFrame({f"x{i}": x[:, i] for i in range(30)}).with_columns(
        pl.Series("city", city, dtype=pl.String)
    )
    columns = frame.columns
    run = lambda: near_duplicate_rows(frame, columns, digits=4)  # noqa: E731
    if memory:
        print(f"near_memory {peak_extra_bytes(run)} {frame.estimated_size()}")
        return
    pairs, ours = timed(run)
    found = {tuple(sorted(p)) for p in pairs.tolist()}
    truth = [(int(s), rows - planted + i) for i, s in enumerate(source)]
    same = sum(t in found for t in truth[: planted // 2]) / (planted // 2)
    noisy = sum(t in found for t in truth[planted // 2 :]) / (planted - planted // 2)
    # brute force: every pair of a sample compared column by column (rounded alike)
    sample = 3000
    rounded = frame.head(sample).select(
        [pl.col(c).round_sig_figs(4) for c in columns[:30]]
        + [pl.col("city").str.to_lowercase().str.strip_chars()]
    )
    numbers = rounded.select(columns[:30]).to_numpy()
    text = np.asarray(rounded["city"].to_list())
    started = time.perf_counter()
    hits = 0
    for i in range(sample):
        equal = (numbers[i + 1 :] == numbers[i]).all(axis=1) & (text[i + 1 :] == text[i])
        hits += int(equal.sum())
    brute = (time.perf_counter() - started) * (rows / sample) ** 2
    print(
        f"near-duplicate rows, {rows:,} x 31: mllife {ours:.1f} s (group-by), brute force"
        f" over all pairs ~{brute:,.0f} s (measured on {sample:,}, scaled by n^2);"
        f" {len(found)} pairs; recall of the {planted:,} planted copies: {same:.3f} with"
        f" the same numbers, {noisy:.3f} with every number off by 1e-6 (a rounding"
        f" boundary between two copies splits them)"
    )


def _distinct_digit(digit: np.ndarray, rng):
    from PIL import Image

    image = Image.fromarray((digit * 255 / 16).astype(np.uint8)).resize((32, 32))
    image = image.rotate(rng.uniform(-35, 35), translate=tuple(rng.integers(-5, 6, 2)))
    scale = int(rng.integers(24, 41))
    return image.resize((scale, scale)).resize((32, 32))


def image_near_duplicates(count: int) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    from mllife.data.near_duplicates import (
        MAX_BITS,
        image_fingerprints,
        near_duplicate_images,
    )

    rng = np.random.default_rng(3)
    digits = load_digits()
    root = Path(tempfile.mkdtemp(prefix="bench-nd-"))
    planted = count // 100
    paths = []
    for i in range(count - planted):
        image = _distinct_digit(digits.images[i % len(digits.images)], rng)
        image.save(root / f"{i:06d}.png")
        paths.append(f"{i:06d}.png")
    sources = rng.choice(count - planted, planted, replace=False)
    for n, s in enumerate(sources):
        buffer = io.BytesIO()
        big = Image.open(root / paths[s]).resize((64, 64), Image.Resampling.BILINEAR)
        big.convert("RGB").save(buffer, "JPEG", quality=70)
        (root / f"copy{n:05d}.jpg").write_bytes(buffer.getvalue())
        paths.append(f"copy{n:05d}.jpg")
    sha = [hashlib.sha256((root / p).read_bytes()).hexdigest() for p in paths]
    cache = root / "fingerprints.parquet"
    fingerprint = lambda: image_fingerprints(paths, sha, root=root, cache=cache)  # noqa: E731
    (hashes, thumbs, _), decode = timed(fingerprint)
    _, cached = timed(fingerprint)
    times = {}
    for n in (count // 4, count // 2, count):
        (pairs, _), times[n] = timed(
            lambda n=n: near_duplicate_images(hashes[:n], thumbs[:n], max_distance=0.016)
        )
    found = {tuple(sorted(p)) for p in pairs.tolist()}
    truth = {(int(s), count - planted + n) for n, s in enumerate(sources)}
    recall = len(found & truth) / len(truth)
    sample = min(4000, count)
    started = time.perf_counter()
    for i in range(sample):  # every pair: hash distance, then thumbnails where close
        close = np.bitwise_count(hashes[i + 1 : sample] ^ hashes[i]) <= MAX_BITS
        if close.any():
            rest = thumbs[i + 1 : sample][close].astype(np.int16)
            np.abs(rest - thumbs[i]).mean(axis=1)
    brute = (time.perf_counter() - started) * (count / sample) ** 2
    steps = ", ".join(f"{n:,}: {t:.2f} s" for n, t in times.items())
    print(
        f"near-duplicate images, {count:,}: fingerprints {decode:.1f} s (decode once;"
        f" {cached:.2f} s from the cache), search {steps}; brute force over all pairs"
        f" ~{brute:.2f} s (measured on {sample:,}, scaled by n^2); recall of the"
        f" {planted} planted copies {recall:.3f}, other pairs {len(found - truth)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        table(args.rows, memory=True)
        table_near_duplicates(args.rows, memory=True)
        return
    table(args.rows, memory=False)
    table_near_duplicates(args.rows, memory=False)
    for line in in_exact_rss_child(["--memory-only"]).splitlines():
        if line.startswith("table_memory"):
            ours, bare = (int(v) for v in line.split()[1:])
            print(f"label issues, table: peak memory added: mllife {ours / 2**20:.0f} MiB,"
                  f" cleanlab alone {bare / 2**20:.0f} MiB")  # fmt: skip
        if line.startswith("near_memory"):
            ours, size = (int(v) for v in line.split()[1:])
            print(f"near-duplicate rows: peak memory added {ours / 2**20:.0f} MiB"
                  f" (the table itself: {size / 2**20:.0f} MiB)")  # fmt: skip
    images(args.images)
    image_near_duplicates(args.images)


if __name__ == "__main__":
    main()
