"""Throwaway services for the team-profile tests, started on 127.0.0.1 by the tests
themselves and stopped after: a PostgreSQL cluster in a temporary folder, a Redis
server without persistence, an S3 service (moto's, in memory), and Celery workers of a
project (``mllife worker``).

PostgreSQL refuses to run as root; when the tests run as root the cluster belongs to
the unprivileged ``nobody`` user (``runuser``), otherwise to the current user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.serving import free_port

__all__ = ["PostgresServer", "postgres_server", "redis_server", "s3_server", "start_worker"]


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:  # Debian keeps the server binaries off PATH
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
        found = next((str(v / name) for v in versions if (v / name).exists()), None)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: `apt-get install postgresql` (as root)"
        )
    return found


class PostgresServer:
    """A running throwaway cluster; ``url`` connects as its superuser to ``database``."""

    def __init__(self, folder: Path, *, database: str = "mllife") -> None:
        self.folder, self.port, self.database = folder, free_port(), database
        self.data = folder / "data"
        self.user = "nobody" if os.geteuid() == 0 else None
        self.role = self.user or os.environ.get("USER") or "postgres"

    def _as_owner(self, *command: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *command] if self.user else list(command)

    def _run(self, *command: str) -> None:
        done = subprocess.run(self._as_owner(*command), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:2])} failed: {done.stderr or done.stdout}")

    def start(self) -> PostgresServer:
        self.folder.chmod(0o755)
        if self.user:
            shutil.chown(self.folder, self.user)
        self._run(_binary("initdb"), "-D", str(self.data), "-U", self.role, "-A", "trust",
                  "--no-sync", "-E", "UTF8")  # fmt: skip
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
                  "-l", str(self.folder / "server.log"), "start")  # fmt: skip
        self._run(_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                  self.role, self.database)  # fmt: skip
        return self

    @property
    def url(self) -> str:
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{self.database}"

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        # the cluster's files are nobody's: removed as root, or by their owner
        deadline = time.monotonic() + 10
        while self.folder.exists() and time.monotonic() < deadline:
            shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    # not pytest's tmp_path: its parents are private to the user, and the cluster's
    # owner (nobody, under root) must reach its folder
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="mllife-pg-")))
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway Redis on 127.0.0.1 (no persistence); yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [_redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import redis

        client = redis.Redis(port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(30)


@contextlib.contextmanager
def s3_server(bucket: str) -> Iterator[dict[str, str]]:
    """A throwaway S3 service on 127.0.0.1 (moto's server, in memory) holding an empty
    ``bucket``; yields the environment that points boto/s3fs at it (fsspec reads
    ``FSSPEC_S3_ENDPOINT_URL``), for this process and the workers it starts."""
    import urllib.request

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1",
         "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "FSSPEC_S3_ENDPOINT_URL": endpoint}  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the S3 server did not start on port {port}") from None
                time.sleep(0.1)
        request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
        urllib.request.urlopen(request, timeout=10).close()
        yield env
    finally:
        process.terminate()
        process.wait(30)


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is not installed: `apt-get install redis-server`")
    return found


def start_worker(
    config_path: Path, name: str, workdir: Path, *, queues: tuple[str, ...] = (), **env: str
) -> subprocess.Popen:
    """``mllife worker --name NAME [--queue Q ...]`` in its own working directory; its log
    goes to ``workdir/worker.log``. Returns once Celery says the worker is ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "mllife.cli", "--config", str(config_path), "worker",
         "--name", name, *(f"--queue={q}" for q in queues)],
        cwd=workdir, env={**os.environ, **env}, stdout=log.open("w"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while " ready." not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return process
