"""Helpers for serving tests and benchmarks: a table project with two recorded models,
and a real `mllife serve` process on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TABLE_CONFIG = """
[data]
kind = "table"
path = "data/breast_cancer.parquet"
target = "target"
id = "id"
default = "breast_cancer"

[[candidates]]
name = "logreg"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
params = {{ max_iter = 5000 }}

[serving]
watch_seconds = 0.2
{serving}
"""


def table_project(root: Path, *, serving: str = "") -> dict:
    """A breast-cancer project whose champion is a logistic regression (C=1), with a
    second recorded model (C=0.01) for rollout and switching tests."""
    import polars as pl

    from mllife.config.project import CandidateConfig, load_config
    from mllife.data.defaults import write_breast_cancer
    from mllife.data.stage import raw_contract, read_raw, settle_contract
    from mllife.models import build_model
    from mllife.models.registry import save_model
    from mllife.preprocess.tables import TablePreprocessor
    from mllife.promotion.deploy import promote_model
    from mllife.serve import feature_contract
    from mllife.storage.store import Store

    root.mkdir(parents=True, exist_ok=True)
    (root / "mllife.toml").write_text(TABLE_CONFIG.format(serving=serving))
    config = load_config(root / "mllife.toml")
    write_breast_cancer(config.data_path)
    raw = read_raw(config)
    assert raw_contract(config, raw).passed
    settle_contract(config, raw)  # freezes mllife.schema.json, as a passing run does
    columns = feature_contract(config)
    table = pl.read_parquet(config.data_path)
    classes = sorted(table["target"].unique().to_list())
    y = table["target"].to_numpy()
    y_index = [classes.index(v) for v in y]
    store = Store(config.store_path)
    hashes = {}
    for c, name in ((1.0, "logreg"), (0.01, "logreg_small")):
        pre = TablePreprocessor(columns=columns)
        x = pre.fit_transform(table.select(list(columns)))
        spec = CandidateConfig(
            name=name,
            kind="sklearn",
            estimator="sklearn.linear_model.LogisticRegression",
            params={"C": c, "max_iter": 5000},
        )
        model = build_model(spec, classes=classes, preprocessor=pre)
        model.fit(x, y_index, x, y_index, log=lambda _: None)
        ref = save_model(model, artifacts_dir=config.artifacts_dir)
        store.record_model(
            model_hash=ref.model_hash,
            name=name,
            kind="sklearn",
            spec={},
            data_version="test-data",
            split_version="test-split",
            artifact_path=ref.relative_path,
            size_bytes=ref.size_bytes,
            fit_seconds=0.0,
            run_id=None,
        )
        hashes[name] = ref.model_hash
    promote_model(hashes["logreg"], config=config, store=store, reason="test setup")
    rows = table.drop("id", "target").to_dicts()
    return {"config": config, "store": store, "hashes": hashes, "rows": rows, "labels": y}


#: each pytest-xdist worker draws ports from its own block below the kernel's ephemeral
#: range (32768+), so two workers never hand out the same port and a port the kernel gave
#: a client connection is never handed out either
_PORT_BLOCK, _PORT_BASE = 1000, 20000
_next_port = 0


def free_port() -> int:
    """A port free on 127.0.0.1 now, never the same twice in this process, never one
    another test worker may hand out."""
    global _next_port
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = _PORT_BASE + int(worker or 0) * _PORT_BLOCK
    for _ in range(_PORT_BLOCK):
        port = first + _next_port % _PORT_BLOCK
        _next_port += 1
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken (a server of an earlier test still closing)
            return port
    raise RuntimeError(f"no free port in {first}-{first + _PORT_BLOCK - 1}")


class ServerProcess:
    """`mllife serve` in a child process; SIGTERM on exit (which flushes the logs)."""

    def __init__(self, config_path: Path, *, env: dict | None = None, workers: int = 1) -> None:
        self.config_path = Path(config_path)
        self.workers = workers
        self.port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "mllife.cli",
            "--config",
            str(self.config_path),
            "serve",
            "--port",
            str(self.port),
            *(["--workers", str(self.workers)] if self.workers > 1 else []),
        ]
        self.process = subprocess.Popen(
            command,
            cwd=self.config_path.parent,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # read as it comes: a server that writes more than a pipe holds would block on it,
        # and a test that fails can show what the server said
        self._lines: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self._lines.extend(self.process.stdout), daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                self.request("GET", "/health")
            except OSError:
                time.sleep(0.1)
                continue
            time.sleep(0.2)  # ours answered, not a stranger on the port: ours is still up
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            return self
        raise RuntimeError(f"server did not start in 60 s: {self.output()}")

    def output(self) -> str:
        """What the server printed so far (all of it once it has exited)."""
        if self.process.poll() is not None:
            self._reader.join(10)
        return "".join(self._lines)

    def request(self, method: str, path: str, body=None, *, key=None, headers=None):
        """(status, parsed JSON body) of one request on a fresh connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        try:
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            payload = response.read()
        except ConnectionRefusedError as exc:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"the server on port {self.port} exited with code"
                    f" {self.process.returncode}: {self.output()[-3000:]}"
                ) from exc
            raise
        finally:
            connection.close()
        try:
            return response.status, json.loads(payload)
        except ValueError:
            return response.status, payload

    def stop(self, sig=signal.SIGTERM) -> str:
        if self.process is None or self.process.poll() is not None:
            return ""
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.output()

    def __exit__(self, *exc) -> None:
        self.stop()


class Receiver:
    """A webhook on 127.0.0.1: records each POSTed JSON body; the first ``fail`` requests
    get a 500, and each answer waits ``delay`` seconds."""

    def __init__(self, *, fail: int = 0, delay: float = 0.0) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def handle(self):
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a slow answer: what a slow test expects

            def do_POST(self):  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                time.sleep(delay)
                if outer.requests <= fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kinds(self) -> list[str]:
        return sorted(b["alert"]["kind"] for b in self.bodies)
