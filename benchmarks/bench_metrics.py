"""mllife.evaluate and ROC AUC against scikit-learn and a bare numpy pass, same run.

    python benchmarks/bench_metrics.py [--n 10000000] [--n-proba 1000000] [--classes 10]

Targets (issue 3): the full report >= 50x faster than classification_report +
confusion_matrix and <= 2.5x one numpy pass; cold (issue "decisions..."): a fresh process
importing mllife and evaluating 1 M and 10 M predictions once finishes before the same
script with scikit-learn; ROC AUC (ovr, macro) >= 10x faster than
roc_auc_score(multi_class="ovr"); peak extra memory <= 2x the inputs.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn import metrics as skm

from benchmarks._measure import best_of, in_exact_rss_child, peak_extra_bytes
from mllife import evaluate
from mllife.metrics._probabilistic import roc_auc_per_class


def make_labels(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    y_pred = y_true.copy()
    chunk = 1 << 20
    for start in range(0, n, chunk):  # 20% errors, without n-sized temporaries
        part = slice(start, start + chunk)
        wrong = rng.random(len(y_pred[part])) < 0.2
        y_pred[part][wrong] = rng.integers(0, k, int(wrong.sum()))
    return y_true, y_pred


def make_proba(n: int, k: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y_true] += 1.5
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    return y_true, proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--n-proba", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:
        memory(args)
        return
    cold(args)
    time_labels(args)
    time_proba(args)
    print(in_exact_rss_child(["--memory-only"]), end="")


def time_labels(args: argparse.Namespace) -> None:
    k = args.classes
    y_true, y_pred = make_labels(args.n, k)
    input_bytes = y_true.nbytes + y_pred.nbytes
    numpy_pass = best_of(lambda: (y_true == y_pred).mean(), repeat=args.repeat)
    ours = best_of(lambda: evaluate(y_true, y_pred), repeat=args.repeat)

    def sklearn_report():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            skm.classification_report(y_true, y_pred, output_dict=True)
            skm.confusion_matrix(y_true, y_pred)

    sklearn = best_of(sklearn_report, repeat=1)
    print(f"labels: n={args.n:,} classes={k} inputs={input_bytes / 2**20:.0f} MiB")
    print(f"  baseline numpy (y_true == y_pred).mean(): {numpy_pass * 1000:8.1f} ms")
    print(f"  baseline sklearn report + confusion:      {sklearn * 1000:8.1f} ms")
    print(f"  mllife.evaluate (full report, 1000 boot): {ours * 1000:8.1f} ms")
    print(f"  ratio vs sklearn: {sklearn / ours:6.1f}x faster   (target >= 50x)")
    print(f"  ratio vs numpy pass: {ours / numpy_pass:5.2f}x the time (target <= 2.5x)")


COLD_MLLIFE = """
import sys, numpy as np
y_true, y_pred = np.load(sys.argv[1]), np.load(sys.argv[2])
import mllife
mllife.evaluate(y_true, y_pred)
"""
COLD_SKLEARN = """
import sys, warnings, numpy as np
y_true, y_pred = np.load(sys.argv[1]), np.load(sys.argv[2])
from sklearn import metrics
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    metrics.classification_report(y_true, y_pred, output_dict=True)
    metrics.confusion_matrix(y_true, y_pred)
"""


def cold(args: argparse.Namespace) -> None:
    """A fresh process that imports the library and evaluates once, as a script does:
    mllife against scikit-learn, import included (best of 3 processes each)."""
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    def wall(script: str, files: list[str]) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", script, *files], check=True)
            best = min(best, time.perf_counter() - started)
        return best

    for n in (1_000_000, args.n):
        with tempfile.TemporaryDirectory() as tmp:
            y_true, y_pred = make_labels(n, args.classes)
            files = [str(Path(tmp) / "t.npy"), str(Path(tmp) / "p.npy")]
            np.save(files[0], y_true)
            np.save(files[1], y_pred)
            ours, theirs = wall(COLD_MLLIFE, files), wall(COLD_SKLEARN, files)
        print(
            f"cold: n={n:,} fresh process, import + one evaluate: mllife {ours:.2f} s,"
            f" scikit-learn {theirs:.2f} s: {theirs / ours:.1f}x faster (target > 1x)"
        )


def time_proba(args: argparse.Namespace) -> None:
    k = args.classes
    t, proba = make_proba(args.n_proba, k)
    proba_bytes = t.nbytes + proba.nbytes
    ours_auc = best_of(lambda: np.nanmean(roc_auc_per_class(t, proba)), repeat=args.repeat)
    sk_auc = best_of(lambda: skm.roc_auc_score(t, proba, multi_class="ovr"), repeat=1)
    predicted = proba.argmax(1)
    full = best_of(lambda: evaluate(t, predicted, proba=proba), repeat=args.repeat)
    same = np.isclose(
        np.nanmean(roc_auc_per_class(t, proba)), skm.roc_auc_score(t, proba, multi_class="ovr")
    )
    print(f"proba: n={args.n_proba:,} x {k} inputs={proba_bytes / 2**20:.0f} MiB")
    print(f"  baseline sklearn roc_auc_score(ovr):      {sk_auc * 1000:8.1f} ms")
    print(
        f"  mllife ROC AUC (ovr, macro):              {ours_auc * 1000:8.1f} ms"
        f"  (same value: {same})"
    )
    print(f"  ratio vs sklearn: {sk_auc / ours_auc:6.1f}x faster   (target >= 10x)")
    print(f"  mllife.evaluate with proba (all metrics): {full * 1000:8.1f} ms")


def memory(args: argparse.Namespace) -> None:
    """Peak extra memory of one evaluate call, in a process with exact RSS accounting."""
    # Warm up on a large-enough input so lazy imports (polars for large ROC AUC sorts)
    # and one-time allocator set-up are not counted as the call's memory.
    warm_true, warm_pred = make_labels(1 << 21, args.classes)
    evaluate(warm_true, warm_pred, proba=None)
    warm_t, warm_proba = make_proba(60_000, args.classes)
    evaluate(warm_t, warm_proba.argmax(1), proba=warm_proba)
    y_true, y_pred = make_labels(args.n, args.classes)
    inputs = y_true.nbytes + y_pred.nbytes
    peak = peak_extra_bytes(lambda: evaluate(y_true, y_pred))
    print(
        f"memory: evaluate(labels) peak extra {peak / 2**20:.0f} MiB ="
        f" {peak / inputs:.2f}x inputs (target <= 2x)"
    )
    memory_proba(args)


def memory_proba(args: argparse.Namespace) -> None:
    t, proba = make_proba(args.n_proba, args.classes)
    predicted = proba.argmax(1)
    inputs = t.nbytes + proba.nbytes + predicted.nbytes
    peak = peak_extra_bytes(lambda: evaluate(t, predicted, proba=proba))
    print(
        f"memory: evaluate(labels, proba) peak extra {peak / 2**20:.0f} MiB ="
        f" {peak / inputs:.2f}x inputs (target <= 2x)"
    )


if __name__ == "__main__":
    main()
