"""Photos: mllife's streamed, cached image training against a bare torchvision
DataLoader + training loop, peak memory against the number of photos, the decode
cache, and the embedding cache -- each as a ratio measured in the same run.

    python -m benchmarks.bench_images [--images 20000] [--size 64] [--max-side 1024]

Targets (issue "Real photos"): training throughput >= 0.9x the bare loop; peak RSS
with N photos <= 1.2x the peak with N/4; data loading of the second epoch (decode cache
hit) >= 3x faster than the first; an embedding candidate's second run computes no
embedding. The photos are synthetic colour JPEGs of mixed sizes up to ``--max-side``
(written once into ``--folder``, reused by later runs). Run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

HERE = Path(__file__).resolve().parents[1]


def write_photos(folder: Path, n: int, max_side: int) -> list[Path]:
    from PIL import Image

    from mllife.data.colour_photos import CLASSES, colour_photo

    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        label = list(CLASSES)[i % len(CLASSES)]
        path = folder / label / f"{i:06d}.jpg"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            side = (int(rng.integers(48, max_side)), int(rng.integers(48, max_side)))
            # noise-free large photos: generating them is not what is measured
            image = colour_photo(label, rng, size=(min(side[0], 256), min(side[1], 256)))
            image.resize(side, Image.BILINEAR).save(path, format="JPEG", quality=88)
        files.append(path)
    return files


def rows_of(files: list[Path]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "path": [str(f) for f in files],
            "sha256": [hashlib.sha256(f.read_bytes()).hexdigest() for f in files],
            "label": [f.parent.name for f in files],
        }
    )


def mllife_training(files, *, size, epochs, workers, cache_dir) -> float:
    """Seconds for the normalisation pass plus ``epochs`` epochs of mllife's fit."""
    from mllife.config.project import CandidateConfig
    from mllife.models import build_model
    from mllife.preprocess.images import ImagePreprocessor
    from mllife.preprocess.pixels import PixelCache, PixelSet

    rows = rows_of(files)
    classes = sorted(set(rows["label"]))
    y = np.array([classes.index(v) for v in rows["label"]])
    started = time.perf_counter()
    pre = ImagePreprocessor(size=size, channels=3)
    data = PixelSet(
        rows, root=Path("/"), preprocessor=pre, cache=PixelCache(cache_dir), workers=workers
    )
    pre.fit_stats(data.batches(64))
    spec = CandidateConfig(
        name="cnn", kind="torch", architecture="small_cnn",
        params={"epochs": epochs, "batch_size": 64, "patience": epochs + 1, "seed": 0},
    )  # fmt: skip
    model = build_model(spec, classes=classes, preprocessor=pre)
    # a token validation set: what is timed is training
    small = PixelSet(rows.head(64), root=Path("/"), preprocessor=pre, cache=PixelCache(cache_dir))
    model.fit(data, y, small, y[:64], log=lambda _: None)
    return time.perf_counter() - started


def bare_training(files, *, size, epochs, workers) -> float:
    """The same model and settings with a plain torchvision pipeline (decode per epoch)."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision.transforms import v2

    from mllife.models.networks import SmallCNN

    classes = sorted({f.parent.name for f in files})
    transform = v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(size, antialias=True),
            v2.CenterCrop(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.5] * 3, [0.25] * 3),
        ]
    )

    class Folder(Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            with Image.open(files[i]) as image:
                return transform(image.convert("RGB")), classes.index(files[i].parent.name)

    torch.manual_seed(0)
    model = SmallCNN(n_classes=len(classes), input_shape=(3, size, size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loader = DataLoader(Folder(), batch_size=64, shuffle=True, num_workers=workers)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
    return time.perf_counter() - started


def loading_epochs(files, *, size, cache_dir) -> tuple[float, float]:
    """Seconds to load every photo's pixels: first (decode, fill the cache), second (hit)."""
    from mllife.preprocess.images import ImagePreprocessor
    from mllife.preprocess.pixels import PixelCache, PixelSet

    data = PixelSet(
        rows_of(files), root=Path("/"), preprocessor=ImagePreprocessor(size=size, channels=3),
        cache=PixelCache(cache_dir),
    )  # fmt: skip
    times = []
    for _ in range(2):
        started = time.perf_counter()
        for _batch in data.batches(64):
            pass
        times.append(time.perf_counter() - started)
    return times[0], times[1]


def peak_child(folder: Path, n: int, size: int, cache_dir: Path) -> int:
    """Peak RSS (KiB) of a fresh process training on the first ``n`` photos."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_images", "--peak-child", str(n),
         "--folder", str(folder), "--size", str(size), "--cache", str(cache_dir)],
        capture_output=True, text=True, check=True, cwd=HERE,
    )  # fmt: skip
    return int(done.stdout.strip().splitlines()[-1])


def embedding_runs(files, cache_dir: Path, weights: Path) -> tuple[int, int]:
    """Embeddings computed by a first and a second fit of an embedding candidate."""
    from mllife.config.project import CandidateConfig
    from mllife.models import build_model
    from mllife.models.embedding_model import EmbeddingCache
    from mllife.preprocess.images import ImagePreprocessor
    from mllife.preprocess.pixels import PixelCache, PixelSet

    rows = rows_of(files)
    classes = sorted(set(rows["label"]))
    y = np.array([classes.index(v) for v in rows["label"]])
    computed = []
    for _ in range(2):
        pre = ImagePreprocessor(size=32, channels=3)
        spec = CandidateConfig(
            name="embed", kind="embedding", architecture="resnet18", weights=str(weights),
            params={"max_iter": 2000},
        )  # fmt: skip
        model = build_model(spec, classes=classes, preprocessor=pre)
        model.cache = EmbeddingCache(cache_dir / "embeddings")
        data = PixelSet(rows, root=Path("/"), preprocessor=pre, cache=PixelCache(cache_dir))
        model.fit(data, y, data, y, log=lambda _: None)
        computed.append(model.cache.computed)
    return computed[0], computed[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--embedding-images", type=int, default=2_000)
    parser.add_argument(
        "--folder", type=Path, default=Path(tempfile.gettempdir()) / "mllife-photos"
    )
    parser.add_argument("--peak-child", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args()
    if args.peak_child is not None:
        files = sorted(args.folder.rglob("*.jpg"))[: args.peak_child]
        mllife_training(files, size=args.size, epochs=1, workers=0, cache_dir=args.cache)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return
    from mllife.preprocess.pixels import loader_workers

    workers = loader_workers() if args.workers is None else args.workers
    started = time.perf_counter()
    files = write_photos(args.folder, args.images, args.max_side)
    seconds = time.perf_counter() - started
    print(f"{len(files):,} photos up to {args.max_side} px in {args.folder}"
          f" ({seconds:.0f} s to write or find); {workers} loader workers")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        first, second = loading_epochs(files, size=args.size, cache_dir=scratch / "load")
        print(f"data loading: first epoch {first:.1f} s (decode), second {second:.1f} s"
              f" (cache): {first / second:.1f}x faster (target >= 3x)")  # fmt: skip
        ours = mllife_training(
            files, size=args.size, epochs=args.epochs, workers=workers, cache_dir=scratch / "t"
        )
        bare = bare_training(files, size=args.size, epochs=args.epochs, workers=workers)
        n = len(files) * args.epochs
        print(f"training, {args.epochs} epochs: mllife {n / ours:.0f} images/s (normalisation"
              f" pass included), bare DataLoader loop {n / bare:.0f} images/s:"
              f" {bare / ours:.2f}x (target >= 0.9x)")  # fmt: skip
        quarter = peak_child(args.folder, len(files) // 4, args.size, scratch / "p1")
        full = peak_child(args.folder, len(files), args.size, scratch / "p2")
        print(f"peak RSS: {len(files) // 4:,} photos {quarter / 1024:.0f} MiB, {len(files):,}"
              f" photos {full / 1024:.0f} MiB: {full / quarter:.2f}x (target <= 1.2x)")  # fmt: skip
        import torchvision

        weights = scratch / "resnet18.pt"
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
        first_run, second_run = embedding_runs(
            files[: args.embedding_images], scratch / "e", weights
        )
        print(f"embedding candidate on {min(len(files), args.embedding_images):,} photos:"
              f" first run computed {first_run:,} embeddings, second run {second_run}"
              " (target 0)")  # fmt: skip


if __name__ == "__main__":
    main()
