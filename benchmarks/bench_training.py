"""mllife's torch training loop against a bare hand-written loop, same model, same data.

    python benchmarks/bench_training.py [--epochs 5] [--tile 8] [--architecture small_cnn]

Target (issue 5): time per epoch <= 1.2x the bare loop. mllife's loop also scores the
validation split every epoch (for early stopping) and keeps the best weights; the bare
loop only trains. Images/s are printed for both. The digits train split is tiled
``--tile`` times so an epoch is long enough to time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mllife.config.project import CandidateConfig
from mllife.data.defaults import write_digits
from mllife.models import build_model
from mllife.models.torch_model import ARCHITECTURES
from mllife.preprocess.images import ImagePreprocessor


def load(tile: int):
    folder = Path(tempfile.mkdtemp()) / "digits"
    write_digits(folder)
    files = sorted(folder.rglob("*.png"))
    order = np.random.default_rng(0).permutation(len(files))
    files = [files[i] for i in order]
    y = np.array([int(f.parent.name) for f in files])
    pre = ImagePreprocessor(size=8)
    x = pre.fit_transform(files)
    cut = int(0.8 * len(files))
    xt, yt = x[:cut].repeat(tile, 1, 1, 1), np.tile(y[:cut], tile)
    return pre, xt, yt, x[cut:], y[cut:]


def bare_loop(architecture: str, xt, yt, *, epochs: int, batch: int, lr: float) -> float:
    torch.manual_seed(0)
    builder, own = ARCHITECTURES[architecture]
    model = builder(n_classes=10, input_shape=(1, 8, 8), **own)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    target = torch.as_tensor(yt, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), batch):
            idx = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(xt[idx]), target[idx]).backward()
            optimizer.step()
    return (time.perf_counter() - started) / epochs


def mllife_loop(architecture, pre, xt, yt, xv, yv, *, epochs: int, batch: int, lr: float):
    spec = CandidateConfig(
        name="bench",
        kind="torch",
        architecture=architecture,
        params={"epochs": epochs, "patience": epochs + 1, "batch_size": batch, "lr": lr},
    )
    model = build_model(spec, classes=[str(i) for i in range(10)], preprocessor=pre)
    started = time.perf_counter()
    model.fit(xt, yt, xv, yv, log=lambda _: None)
    return (time.perf_counter() - started) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--tile", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--architecture", default="small_cnn", choices=sorted(ARCHITECTURES))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pre, xt, yt, xv, yv = load(args.tile)
    kw = {"epochs": args.epochs, "batch": args.batch, "lr": 3e-3}
    bare = min(bare_loop(args.architecture, xt, yt, **kw) for _ in range(args.repeat))
    ours = min(
        mllife_loop(args.architecture, pre, xt, yt, xv, yv, **kw) for _ in range(args.repeat)
    )
    print(
        f"{args.architecture} on digits: {len(xt)} train images/epoch"
        f" ({args.tile}x tiled), validation {len(xv)}, batch {args.batch},"
        f" device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    print(f"  baseline bare torch loop: {bare:.3f} s/epoch  {len(xt) / bare:9.0f} images/s")
    print(f"  mllife training loop:     {ours:.3f} s/epoch  {len(xt) / ours:9.0f} images/s")
    print(
        f"  ratio: {ours / bare:.2f}x the bare loop (target <= 1.2x; mllife also scores"
        " validation each epoch)"
    )


if __name__ == "__main__":
    main()
