"""mllife installed from its wheel works in a folder that has nothing of this repository:
`mllife init` on a CSV, `mllife run` to a champion, and `mllife ui` serving the graph.

The wheel is built from this checkout and installed without dependencies into a fresh
virtual environment; the dependencies (torch, dagster, ...) come from the test
environment's site-packages through a .pth file, so nothing is downloaded, while
`mllife` and `assets` are imported from the wheel's copy (asserted).
"""

from __future__ import annotations

import contextlib
import os
import signal
import site
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from mllife.data.defaults import write_breast_cancer
from tests.serving import free_port
from tests.ui_graphql import poll_graphql

REPO = Path(__file__).resolve().parents[1]


def _ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("wheel")
    _ok(subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(work / "dist")],
        capture_output=True, text=True, timeout=300,
    ))  # fmt: skip
    (wheel,) = (work / "dist").glob("mllife-*.whl")
    venv = work / "venv"
    _ok(subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True))
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # Only the dependencies' folder; the checkout's editable install is not carried over
    # (the .pth files inside that folder are not processed when it is added this way).
    Path(purelib, "deps.pth").write_text(site.getsitepackages()[0] + "\n")
    _ok(subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True, text=True, timeout=300,
    ))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("MLLIFE_CONFIG", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return {"python": python, "env": env, "work": work}


def test_the_wheel_alone_makes_and_runs_a_project(wheel_env):
    python, env, work = wheel_env["python"], wheel_env["env"], wheel_env["work"]
    elsewhere = work / "somewhere_else"
    elsewhere.mkdir()
    code = "import mllife, assets; print(mllife.__file__); print(assets.__file__)"
    where = _ok(subprocess.run(
        [str(python), "-c", code],
        cwd=elsewhere, env=env, capture_output=True, text=True,
    )).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(work / "venv") for p in where), where

    write_breast_cancer(elsewhere / "bc.parquet")
    pl.read_parquet(elsewhere / "bc.parquet").write_csv(elsewhere / "cancer.csv")
    mllife = str(work / "venv" / "bin" / "mllife")
    _ok(subprocess.run(
        [mllife, "init", "cancer", "--table", "cancer.csv", "--target", "target"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    ))  # fmt: skip
    project = elsewhere / "cancer"
    run = _ok(subprocess.run(
        [mllife, "run"], cwd=project, env=env, capture_output=True, text=True, timeout=600
    ))  # fmt: skip
    assert "champion (promoted):" in run.stdout

    port = free_port()
    ui = subprocess.Popen(
        [mllife, "ui", "--port", str(port)], cwd=project, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        nodes = _asset_nodes(port, deadline=time.monotonic() + 180)
        # SIGTERM to `mllife ui` alone (what a service manager sends): it takes
        # `dagster dev` and its webserver, daemon and code servers down with it
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _serving(port) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _serving(port), "dagster dev outlived mllife ui"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(ui.pid, signal.SIGKILL)
        ui.wait(timeout=60)
    assert {"raw_data", "candidate_logreg", "candidate_boosting", "champion"} <= nodes


def _serving(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _asset_nodes(port: int, *, deadline: float) -> set[str]:
    def names(data: dict) -> set[str] | None:
        nodes = data.get("assetNodes") or []
        return {node["assetKey"]["path"][-1] for node in nodes} or None

    return poll_graphql(port, "{ assetNodes { assetKey { path } } }", names, deadline=deadline)
