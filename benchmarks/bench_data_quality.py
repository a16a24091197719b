"""The search for suspected label errors at size, beside cleanlab alone, same run.

    python benchmarks/bench_data_quality.py [--rows 1000000] [--images 20000]

1. **Table**: ``--rows`` rows x 30 numeric columns, two classes with 5% of labels flipped.
   mllife's search (``find_label_issues``: out-of-fold logistic regression, five folds,
   then confident learning) beside ``cleanlab.filter.find_label_issues`` alone on the
   same out-of-fold probabilities (the part mllife does not add), with the peak memory
   each adds, and precision/recall on the flipped labels.
2. **Images**: ``--images`` PNG files (the digits, repeated with pixel noise), 5% of
   labels flipped: the whole search (``label_issues_in``: decoding each file to a 16x16
   thumbnail, then the same) beside cleanlab alone.

Near-duplicate search (the other half of issue 45's benchmark) is not built yet.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._measure import in_exact_rss_child, peak_extra_bytes  # noqa: E402


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
    started = time.perf_counter()
    found = run()
    ours = time.perf_counter() - started
    started = time.perf_counter()
    alone()
    bare = time.perf_counter() - started
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
    from mllife.evaluation.label_issues import _thumbnails, label_issues_in

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
    rows = pl.DataFrame({"path": paths, "label": [str(v) for v in labels]})
    started = time.perf_counter()
    found = label_issues_in(config, rows, None)
    ours = time.perf_counter() - started
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    features = _thumbnails(paths, root)
    proba = cross_val_predict(
        LogisticRegression(max_iter=2000), features, labels, cv=StratifiedKFold(5),
        method="predict_proba",
    )  # fmt: skip
    started = time.perf_counter()
    cleanlab.filter.find_label_issues(
        labels, proba, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    bare = time.perf_counter() - started
    index = {p: i for i, p in enumerate(paths)}
    print(
        f"images {count:,}: mllife {ours:.1f} s (decoding, out-of-fold fits, search),"
        f" cleanlab alone {bare:.2f} s; {_score(found, index, flipped)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        table(args.rows, memory=True)
        return
    table(args.rows, memory=False)
    for line in in_exact_rss_child(["--memory-only"]).splitlines():
        if line.startswith("table_memory"):
            ours, bare = (int(v) for v in line.split()[1:])
            print(f"table peak memory added: mllife {ours / 2**20:.0f} MiB,"
                  f" cleanlab alone {bare / 2**20:.0f} MiB")  # fmt: skip
    images(args.images)


if __name__ == "__main__":
    main()
