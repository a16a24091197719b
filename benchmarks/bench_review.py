"""The review desk under a large prediction log, and what ratings cost serving.

    python benchmarks/bench_review.py [--predictions 1000000] [--pages 60] [--rounds 10]

1. **Queue page**: a table project's store holds ``--predictions`` logged predictions
   (half as many distinct inputs, 10% of them also answered by a shadow model that
   disagrees on some, 1% rated, 1% already reviewed). `mllife serve` answers
   ``GET /review/`` (a review key; the first page, 25 items) ``--pages`` times over HTTP.
   Target (issue 44): p95 <= 300 ms. Baseline, same run and store: the bare top-25 query
   (``ORDER BY confidence LIMIT 25``, one DuckDB connection in this process), the least
   any queue page over this log can cost.
2. **Ratings**: the same server's throughput on single-row ``/predict`` requests alone,
   against a mix where every tenth request is a ``POST /rating`` of an earlier
   prediction (logged like feedback), rounds alternating. Target: >= 0.9x.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_serve import (  # noqa: E402
    _LENGTH,
    Server,
    median_interval,
    pin_load_generator,
)
from mllife.storage.schema import REVIEW_INPUTS_SELECT  # noqa: E402
from tests.serving import table_project  # noqa: E402


def fill_log(store_path: Path, n: int, model_hash: str) -> None:
    """``n`` answered predictions (and shadow answers, ratings, reviews) written with SQL."""
    conn = duckdb.connect(str(store_path))
    inputs = max(1, n // 2)
    conn.execute(
        f"""INSERT INTO predictions
        SELECT lpad(to_hex(i), 32, '0') || '-0', lpad(to_hex(i), 32, '0'), 0,
            TIMESTAMP '2026-11-01' + INTERVAL (i % 2592000) SECOND, 'app', ?, 'logreg',
            'champion', true, md5((i % {inputs})::VARCHAR), '{{}}',
            CASE WHEN hash(i) % 2 = 0 THEN 'benign' ELSE 'malignant' END,
            0.5 + (hash(i * 7) % 500000) / 1000000.0, 1.0, 'bench'
        FROM range({n}) t(i)""",
        [model_hash],
    )
    conn.execute(
        f"""INSERT INTO predictions
        SELECT prediction_id || '-shadow', request_id, 0, received_at, key_name, 'shadow',
            'logreg_small', 'shadow', false, input_hash, features,
            CASE WHEN hash(input_hash) % 3 = 0 THEN
                (CASE WHEN predicted = 'benign' THEN 'malignant' ELSE 'benign' END)
                ELSE predicted END,
            confidence, 1.0, 'bench'
        FROM predictions USING SAMPLE {max(1, n // 10)} ROWS"""
    )
    conn.execute(
        f"""INSERT INTO ratings SELECT prediction_id, 1 + hash(prediction_id) % 5, NULL, 'app',
            received_at, 'bench' FROM predictions WHERE answered USING SAMPLE {max(1, n // 100)}
            ROWS"""
    )
    conn.execute(
        f"""INSERT INTO reviews SELECT prediction_id, input_hash, 'skip', NULL, NULL, 'r',
            received_at, 'bench' FROM predictions WHERE answered USING SAMPLE {max(1, n // 100)}
            ROWS"""
    )
    # what ingestion does in the same transaction as the rows
    conn.execute("CREATE OR REPLACE TABLE review_inputs AS " + REVIEW_INPUTS_SELECT)
    conn.close()


def bare_top(store_path: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn = duckdb.connect(str(store_path), read_only=True)
        conn.execute(
            "SELECT prediction_id, confidence FROM predictions WHERE answered"
            " ORDER BY confidence LIMIT 25"
        ).fetchall()
        conn.close()
        times.append(time.perf_counter() - started)
    return times


def page_times(port: int, key: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/review/", headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        body = response.read()
        times.append(time.perf_counter() - started)
        if response.status != 200 or body.count(b'class="item"') != 25:
            raise RuntimeError(f"the queue page answered {response.status}: {body[:300]!r}")
    return times


def _request(path: str, body: bytes, key: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nAuthorization: Bearer {key}\r\n\r\n"
    )
    return head.encode() + body


def throughput(port: int, requests: list[bytes], *, seconds: float, connections: int) -> float:
    """Requests per second, each connection cycling through ``requests``."""
    done = [0]

    async def connection(offset: int, stop_at: float):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        try:
            while time.perf_counter() < stop_at:
                writer.write(requests[i % len(requests)])
                i += 1
                head = await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(int(_LENGTH.search(head).group(1)))
                if head[9:12] not in (b"200", b"202"):
                    raise RuntimeError(f"status {head[9:12]!r}")
                done[0] += 1
        finally:
            writer.close()

    async def run():
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*[connection(c * 3, stop_at) for c in range(connections)])

    started = time.perf_counter()
    asyncio.run(run())
    return done[0] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    server_cpus = pin_load_generator(enabled=True)
    root = Path(tempfile.mkdtemp(prefix="bench-review-")) / "project"
    project = table_project(root)
    from mllife.serve.keys import create_key

    store = project["store"]
    user = create_key(store, "app", routes=("predict",))
    reviewer = create_key(store, "desk", routes=("review",))
    started = time.perf_counter()
    fill_log(project["config"].store_path, args.predictions, project["hashes"]["logreg"])
    print(f"{args.predictions:,} predictions logged in {time.perf_counter() - started:.1f} s")
    os.environ["PYTHONPATH"] = str(REPO)
    command = [sys.executable, "-m", "mllife.cli", "--config", str(project["config"].path),
               "serve", "--port"]  # fmt: skip
    server = Server(command, cwd=REPO, cpus=server_cpus)
    try:
        page_times(server.port, reviewer, 3)  # warm: imports, templates, DuckDB's caches
        pages = np.asarray(page_times(server.port, reviewer, args.pages)) * 1000
        bare = np.asarray(bare_top(project["config"].store_path, args.pages)) * 1000
        p95, bare95 = np.percentile(pages, 95), np.percentile(bare, 95)
        print(
            f"queue page over HTTP: p50 {np.median(pages):.0f} ms, p95 {p95:.0f} ms"
            f" (target <= 300 ms: {'met' if p95 <= 300 else 'NOT met'}); bare top-25 query"
            f" p95 {bare95:.0f} ms; page / bare = {p95 / bare95:.1f}x"
        )
        single = orjson.dumps({"rows": [project["rows"][0]]})
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        batch = orjson.dumps({"rows": project["rows"][:200]})
        headers = {"Authorization": f"Bearer {user}", "Content-Type": "application/json"}
        connection.request("POST", "/predict", batch, headers)
        ids = [p["id"] for p in orjson.loads(connection.getresponse().read())["predictions"]]
        predict = [_request("/predict", single, user)]
        ratings = [
            _request("/rating", orjson.dumps({"prediction_id": pid, "rating": 4}), user)
            for pid in ids
        ]
        mixed = []
        for i in range(len(ratings) * 10):
            mixed.append(ratings[i // 10] if i % 10 == 9 else predict[0])
        throughput(server.port, predict, seconds=1.0, connections=8)  # warm
        ratios, alone, with_ratings = [], [], []
        for number in range(args.rounds):
            order = [("alone", predict), ("mixed", mixed)]
            if number % 2:
                order.reverse()
            got = {name: throughput(server.port, reqs, seconds=args.seconds, connections=8)
                   for name, reqs in order}  # fmt: skip
            alone.append(got["alone"])
            with_ratings.append(got["mixed"])
            ratios.append(got["mixed"] / got["alone"])
        low, high = median_interval(ratios)
        print(
            f"/predict alone {np.median(alone):.0f} req/s; with every tenth request a"
            f" /rating {np.median(with_ratings):.0f} req/s; ratio {np.median(ratios):.2f}x"
            f" (95% CI {low:.2f}-{high:.2f}; target >= 0.9x:"
            f" {'met' if np.median(ratios) >= 0.9 else 'NOT met'})"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
