"""Serving a torch image champion: micro-batching against per-request inference, and
/health under large batches, same run.

    python benchmarks/bench_serve_images.py [--champions small_cnn:32,resnet18:64,...]
        [--clients 32] [--seconds 3] [--rounds 5] [--no-pin]

Each champion (``architecture:image size``; colour photos, three classes) is trained for
one epoch and promoted in a project of its own:

- ``small_cnn`` is the from-scratch CNN `mllife init` writes when no pretrained weights
  are on the machine: ~0.4 ms per image on one CPU, so HTTP handling dominates;
- ``resnet18`` is the fine-tuned ResNet-18 it writes when the ImageNet weights are in the
  torch hub cache (the transfer-learning path for real photos);
- ``mobilenet_v3_small``, a backbone made for CPU serving, through the same
  ``architecture``/``weights`` keys as any torchvision classifier.

Nothing is downloaded: a torchvision backbone starts from a local state-dict file
(``weights = "weights/..."``), which loads through the same code; its values do not
change the time a forward takes. Beside each ratio the benchmark prints the network's own
gain from batching on the servers' CPU (forward pass of 32 images against 32 of one, no
HTTP): a server cannot gain much more than its model does, and on a CPU a ResNet-18 gains
~2.5x at 64 px, a MobileNet ~8x.

Two `mllife serve` processes answer the same champion, one with ``[serving.batching]``
on (the default: 5 ms window, up to 32 images) and one with it off; rounds alternate
between them, ``--clients`` keep-alive connections each sending one-image requests, and
the ratio of requests per second is taken within each round (median printed).
Target (issue 26): >= 3x at 32 clients. Then 4 clients send batches of 1,024 images to
the batching server while another polls /health every 10 ms: its p99 must be <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_images import rows_of, write_photos  # noqa: E402
from benchmarks.bench_serve import Server, _connection, load, pin_load_generator  # noqa: E402
from mllife.config.ops import BatchingConfig  # noqa: E402

CONFIG = """
[data]
kind = "images"
path = "photos"
image_size = {size}
channels = 3

[[candidates]]
name = "{architecture}"
kind = "torch"
architecture = "{architecture}"
{weights}params = {{ epochs = 1, patience = 2 }}
"""


def champion_project(root: Path, architecture: str, size: int):
    """A project whose champion is ``architecture`` trained for one epoch on generated
    photos (torchvision backbones from a local pretrained-weights file); returns its
    config, an API key, some photos to send and the model."""
    from mllife.config.project import load_config
    from mllife.models import build_model
    from mllife.models.registry import save_model
    from mllife.preprocess.images import ImagePreprocessor
    from mllife.preprocess.pixels import PixelCache, PixelSet
    from mllife.promotion.deploy import promote_model
    from mllife.serve.keys import create_key
    from mllife.storage.store import Store

    files = write_photos(root / "photos", 192, 160)
    weights = ""
    if architecture != "small_cnn":  # transfer learning: a pretrained backbone's file
        import torch
        import torchvision

        (root / "weights").mkdir()
        network = torchvision.models.get_model(architecture, weights=None)
        torch.save(network.state_dict(), root / "weights" / f"{architecture}.pt")
        weights = f'weights = "weights/{architecture}.pt"\n'
    (root / "mllife.toml").write_text(
        CONFIG.format(size=size, architecture=architecture, weights=weights)
    )
    config = load_config(root / "mllife.toml")
    rows = rows_of(files)
    classes = sorted(set(rows["label"]))
    y = np.array([classes.index(v) for v in rows["label"]])
    pre = ImagePreprocessor(size=size, channels=3)
    data = PixelSet(rows, root=Path("/"), preprocessor=pre, cache=PixelCache(root / "cache"))
    pre.fit_stats(data.batches(64))
    model = build_model(config.candidate(architecture), classes=classes, preprocessor=pre,
                        root=root)  # fmt: skip
    model.fit(data, y, data, y, log=lambda _: None)
    ref = save_model(model, artifacts_dir=config.artifacts_dir)
    store = Store(config.store_path)
    store.record_model(model_hash=ref.model_hash, name=architecture, kind="torch", spec={},
                       data_version="bench", split_version="bench",
                       artifact_path=ref.relative_path, size_bytes=ref.size_bytes,
                       fit_seconds=0.0, run_id=None)  # fmt: skip
    promote_model(ref.model_hash, config=config, store=store, reason="benchmark")
    return config.path, create_key(store, "bench"), [f.read_bytes() for f in files], model


def batching_ceiling(model, photos: list[bytes], batch: int, cpus: set[int] | None) -> float:
    """How much cheaper per image the network's forward pass is at ``batch`` images than
    at one, on the servers' CPU: no server can gain more from batching than its model
    does (beyond the per-request costs it also shares)."""
    import torch

    from mllife.models._layout import for_inference

    mine = os.sched_getaffinity(0)
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    threads = torch.get_num_threads()
    torch.set_num_threads(len(cpus or mine))
    try:
        pre = model.preprocessor
        images = pre.normalize(pre.pixels([photos[i % len(photos)] for i in range(batch)]))
        per_image = {}
        with torch.inference_mode():
            for size in (1, batch):
                network, x = for_inference(model.network, images[:size], torch.device("cpu"))
                for _ in range(3):
                    network(x)
                calls = max(5, 3 * batch // size)
                started = time.perf_counter()
                for _ in range(calls):
                    network(x)
                per_image[size] = (time.perf_counter() - started) / (calls * size)
    finally:
        torch.set_num_threads(threads)
        os.sched_setaffinity(0, mine)
    return per_image[1] / per_image[batch]


def health_under_batches(port: int, key: str, batch: bytes, *, seconds: float) -> dict:
    """p50/p99 of /health polled every 10 ms while 4 clients send ``batch`` again and
    again; and how many batches were answered."""
    headers = (
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(batch)}\r\n\r\n"
    )
    request = headers.encode() + batch
    probe = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    latencies, big, failures = [], [], []

    async def poll(stop_at: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(probe)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.01)
        writer.close()

    async def run() -> None:
        stop_at = time.perf_counter() + seconds
        budget = [10**9]
        senders = [_connection(port, request, stop_at, budget, big, failures) for _ in range(4)]
        await asyncio.sleep(0)  # the batches go first
        await asyncio.gather(*senders, poll(stop_at))

    asyncio.run(run())
    if failures:
        raise RuntimeError(f"{len(failures)} batch requests failed: {failures[0]!r}")
    ms = np.asarray(latencies) * 1000
    return {"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99)),
            "probes": len(ms), "batches": len(big)}  # fmt: skip


def _batch_counters(server: Server) -> tuple[int, int]:
    """(forward passes, requests) of the micro-batcher, from /metrics."""
    text = server.get("/metrics").decode()
    counters = dict(line.split() for line in text.splitlines() if line.startswith("mllife_micro"))
    return (int(counters["mllife_microbatches_total"]),
            int(counters["mllife_microbatched_requests_total"]))  # fmt: skip


def batching_against_per_request(root: Path, architecture: str, size: int, args,
                                 server_cpus) -> None:  # fmt: skip
    """Prints requests/s of both modes and their ratio, then /health under big batches."""
    config, key, photos, model = champion_project(root, architecture, size)
    max_images = args.max_images or BatchingConfig().max_images
    ceiling = batching_ceiling(model, photos, max_images, server_cpus)
    # a time limit that 1,024-image ResNet batches queued four deep meet on a slow CPU:
    # the /health figure is about the server answering while they run, not their latency
    text = config.read_text() + "\n[serving]\nrequest_timeout_seconds = 600\n"
    config.write_text(text + f"\n[serving.batching]\nmax_images = {max_images}\n")
    unbatched = root / "mllife-unbatched.toml"
    unbatched.write_text(text + "\n[serving.batching]\nenabled = false\n")
    python = sys.executable
    commands = {
        "batched": [python, "-m", "mllife.cli", "--config", str(config), "serve", "--port"],
        "per_request": [python, "-m", "mllife.cli", "--config", str(unbatched), "serve",
                        "--port"],
    }  # fmt: skip
    single = orjson.dumps({"image": base64.b64encode(photos[0]).decode()})
    servers = {}
    try:
        for name, command in commands.items():
            servers[name] = Server(command, cwd=REPO, cpus=server_cpus)
        for server in servers.values():  # warm-up: models loaded, threads started
            load(server.port, single, key, seconds=1.0, requests=10**6, connections=8)
        ratios, figures = [], {name: [] for name in servers}
        passes, requests = _batch_counters(servers["batched"])
        for _ in range(args.rounds):
            for name, server in servers.items():
                result = load(server.port, single, key, seconds=args.seconds,
                              requests=10**7, connections=args.clients)  # fmt: skip
                figures[name].append(result)
            ratios.append(figures["batched"][-1]["rps"] / figures["per_request"][-1]["rps"])
        passes_after, requests_after = _batch_counters(servers["batched"])
        mean_batch = (requests_after - requests) / max(1, passes_after - passes)
        print(f"{architecture} champion, {size} px:")
        for name, results in figures.items():
            rps = np.median([r["rps"] for r in results])
            p99 = np.median([r["p99"] for r in results])
            print(f"  {name:12s} {args.clients} clients x 1 image: {rps:7.0f} requests/s,"
                  f" p99 {p99:.1f} ms")  # fmt: skip
        print(f"  a shared forward pass served {mean_batch:.1f} requests on average")
        print(f"  micro-batching: {np.median(ratios):.2f}x the requests/s of per-request"
              f" inference (median of {args.rounds} rounds, range {min(ratios):.2f}-"
              f"{max(ratios):.2f}; target >= 3x)")  # fmt: skip
        print(f"  (the network alone, no HTTP: {ceiling:.2f}x less time per image in a"
              f" forward pass of {max_images} than of 1)")  # fmt: skip
        servers.pop("per_request").stop()
        images = [base64.b64encode(photos[i % len(photos)]).decode()
                  for i in range(args.batch_images)]  # fmt: skip
        batch = orjson.dumps({"images": images})
        health = health_under_batches(servers["batched"].port, key, batch, seconds=20.0)
        print(f"  /health while 4 clients send {args.batch_images}-image batches"
              f" ({len(batch) / 2**20:.1f} MB each, {health['batches']} answered):"
              f" p50 {health['p50']:.1f} ms, p99 {health['p99']:.1f} ms over"
              f" {health['probes']} probes (target p99 <= 50 ms)", flush=True)  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()


DEFAULT_CHAMPIONS = "small_cnn:32,resnet18:64,mobilenet_v3_small:64"


def _champions(text: str) -> list[tuple[str, int]]:
    pairs = [item.split(":") for item in text.split(",")]
    return [(architecture, int(size)) for architecture, size in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--champions",
        type=_champions,
        default=_champions(DEFAULT_CHAMPIONS),
        help=f"architecture:image size, comma-separated (default: {DEFAULT_CHAMPIONS})",
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-images", type=int, default=1024)
    parser.add_argument(
        "--max-images",
        type=int,
        default=None,
        help="[serving.batching] max_images (default: the config's, 32)",
    )
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    server_cpus = pin_load_generator(enabled=not args.no_pin)
    os.environ["PYTHONPATH"] = str(REPO)
    for architecture, size in args.champions:
        root = Path(tempfile.mkdtemp(prefix=f"bench-serve-{architecture}-"))
        batching_against_per_request(root, architecture, size, args, server_cpus)


if __name__ == "__main__":
    main()
