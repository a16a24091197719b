"""`mllife serve` under load on 127.0.0.1, against a bare Starlette endpoint, same run.

    python benchmarks/bench_serve.py [--seconds 8] [--requests 40000] [--connections 8]

A tabular champion (logistic regression on the breast-cancer data, 30 features) answers
single rows and batches of 64 rows. Each server runs in its own process; an asyncio load
generator (keep-alive connections, a bounded number of requests and seconds) measures
throughput and latency. Targets (issue 9): logging costs <= 10% throughput; mllife >=
0.8x the bare endpoint's throughput; >= 1,000 single-row requests/s with p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.serving import free_port, table_project  # noqa: E402

_LENGTH = re.compile(rb"content-length: *(\d+)", re.IGNORECASE)


async def _connection(port, request, stop_at, budget, latencies, failures):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while budget[0] > 0 and time.perf_counter() < stop_at:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(_LENGTH.search(head).group(1)))
            latencies.append(time.perf_counter() - started)
            if head[9:12] != b"200":
                failures.append(head[9:12])
    finally:
        writer.close()


def load(port: int, body: bytes, key: str | None, *, seconds, requests, connections) -> dict:
    headers = [
        "POST /predict HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if key:
        headers.append(f"Authorization: Bearer {key}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
    latencies, failures, budget = [], [], [requests]

    async def run():
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(
            *[
                _connection(port, request, stop_at, budget, latencies, failures)
                for _ in range(connections)
            ]
        )

    started = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. status {failures[0]!r}")
    ms = np.asarray(latencies) * 1000
    return {
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "n": len(latencies),
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, command: list[str], cwd: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [*command, str(self.port)],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait()

    def _wait(self) -> None:
        import http.client

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.process.stderr.read().decode())
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                conn.getresponse().read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-serve-")) / "project"
    project = table_project(root)
    from mllife.keys import create_key

    key = create_key(project["store"], "bench")
    config = project["config"].path
    no_log = root / "mllife-nolog.toml"
    no_log.write_text(config.read_text() + "\n[serving.log]\nenabled = false\n")
    rows = project["rows"]
    bodies = {
        "single": orjson.dumps({"rows": [rows[0]]}),
        "batch64": orjson.dumps({"rows": rows[:64]}),
    }
    python = sys.executable
    env_cmd = {
        "bare": [python, "-m", "benchmarks._bare_server", str(config)],
        "mllife": [python, "-m", "mllife.cli", "--config", str(config), "serve", "--port"],
        "mllife_nolog": [python, "-m", "mllife.cli", "--config", str(no_log), "serve", "--port"],
    }
    os.environ["PYTHONPATH"] = str(REPO)
    results: dict[tuple[str, str], dict] = {}
    for _ in range(args.rounds):
        for name, command in env_cmd.items():
            server = Server(command, cwd=REPO)
            try:
                for shape, body in bodies.items():
                    token = None if name == "bare" else key
                    load(server.port, body, token, seconds=1.0, requests=500, connections=4)
                    cpu_before = process_cpu_seconds(server.process.pid)
                    got = load(
                        server.port,
                        body,
                        token,
                        seconds=args.seconds,
                        requests=args.requests,
                        connections=args.connections,
                    )
                    used = process_cpu_seconds(server.process.pid) - cpu_before
                    got["cpu_us"] = used / got["n"] * 1e6
                    best = results.get((name, shape))
                    if best is None or got["rps"] > best["rps"]:
                        results[(name, shape)] = got
            finally:
                server.stop()

    # CPU per request (all server threads) says where throughput goes when the load
    # generator and the server share the cores
    print(
        f"{'server':<14}{'shape':<9}{'req/s':>9}{'rows/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'cpu us/req':>12}"
    )
    for (name, shape), r in sorted(results.items()):
        per = 64 if shape == "batch64" else 1
        print(
            f"{name:<14}{shape:<9}{r['rps']:>9.0f}{r['rps'] * per:>10.0f}"
            f"{r['p50']:>9.2f}{r['p99']:>9.2f}{r['cpu_us']:>12.0f}"
        )
    print()
    for shape in bodies:
        on, off, bare = (results[(n, shape)]["rps"] for n in ("mllife", "mllife_nolog", "bare"))
        cost = 1 - on / off
        print(
            f"{shape}: mllife {on / bare:.2f}x the bare endpoint (target >= 0.8x);"
            f" logging costs {cost:+.1%} throughput (target <= 10%)"
        )
    single = results[("mllife", "single")]
    print(
        f"single rows with logging: {single['rps']:.0f} req/s (target >= 1000),"
        f" p99 {single['p99']:.1f} ms (target <= 20 ms)"
    )


if __name__ == "__main__":
    main()
