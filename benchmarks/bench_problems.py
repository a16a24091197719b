"""Known problems at scale: incremental re-scoring and the history query.

    python benchmarks/bench_problems.py [--versions 50] [--problems 20] [--patterns 15]

Target (issue 6): with 50 model versions x 20 problems x 15 patterns scored, adding the
51st version scores only its 300 new pairs (the count is asserted in
tests/test_problems.py; here it is printed with the time), and the full history query
takes <= 100 ms. The baseline named below is re-scoring every version from scratch,
measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from mllife.config.project import CandidateConfig, load_config
from mllife.data.defaults import write_digits
from mllife.models import build_model
from mllife.models.registry import save_model
from mllife.preprocess.images import ImagePreprocessor
from mllife.problems.registry import ProblemRegistry
from mllife.storage.store import Store

CLASSES = [str(i) for i in range(10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--patterns", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mllife-bench-problems-"))
    try:
        run(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, args: argparse.Namespace) -> None:
    (root / "mllife.toml").write_text(
        '[[candidates]]\nname = "lr"\nkind = "sklearn"\n'
        'estimator = "sklearn.linear_model.LogisticRegression"\n'
    )
    config = load_config(root / "mllife.toml")
    store = Store(config.store_path)
    registry = ProblemRegistry(config, store)
    write_digits(root / "digits")
    files = sorted((root / "digits").rglob("*.png"))
    order = np.random.default_rng(0).permutation(len(files))
    files = [files[i] for i in order]
    pool = iter(files)
    for p in range(args.problems):
        registry.add_problem(f"problem_{p:02d}", description="synthetic")
        for k in range(args.patterns):
            file = next(pool)
            registry.add_pattern(
                f"problem_{p:02d}",
                input=file,
                expected=file.parent.name,
                kind="positive" if k % 3 else "negative",
                source="contrived",
                classes=CLASSES,
            )
    train = files[-600:]
    y = np.array([int(f.parent.name) for f in train])
    pre = ImagePreprocessor(size=8)
    x = pre.fit_transform(train)

    def version(i: int):
        spec = CandidateConfig(
            name=f"v{i}",
            kind="sklearn",
            estimator="sklearn.linear_model.LogisticRegression",
            params={"C": 0.001 * (1.2**i), "max_iter": 300},
        )
        model = build_model(spec, classes=CLASSES, preprocessor=pre)
        model.fit(x, y, x, y, log=lambda _: None)
        ref = save_model(model, artifacts_dir=config.artifacts_dir)
        store.record_model(
            model_hash=ref.model_hash,
            name=spec.name,
            kind="sklearn",
            spec={},
            data_version="d",
            split_version="s",
            artifact_path=ref.relative_path,
            size_bytes=ref.size_bytes,
            fit_seconds=0.0,
            run_id=None,
        )
        return ref

    refs = [version(i) for i in range(args.versions)]
    clock = time.perf_counter()
    first = registry.score(refs)
    all_versions = time.perf_counter() - clock
    refs.append(version(args.versions))
    clock = time.perf_counter()
    added = registry.score(refs)
    incremental = time.perf_counter() - clock
    registry.history()  # warm the connection path once
    clock = time.perf_counter()
    history = registry.history()
    query = time.perf_counter() - clock
    pairs = args.problems * args.patterns
    print(
        f"{args.versions} versions x {args.problems} problems x {args.patterns} patterns"
        f" ({pairs} patterns)"
    )
    print(
        f"  baseline: scoring all {args.versions} versions from scratch:"
        f" {first.new_pairs} pairs in {all_versions:.2f} s"
    )
    print(
        f"  adding version {args.versions + 1}: {added.new_pairs} new pairs scored"
        f" (expected {pairs}) in {incremental:.3f} s"
        f" = {incremental / all_versions:.3f}x the full re-score"
    )
    print(
        f"  full history query: {history.height} rows in {query * 1000:.1f} ms (target <= 100 ms)"
    )


if __name__ == "__main__":
    main()
