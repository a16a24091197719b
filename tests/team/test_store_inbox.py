"""The store's inbox: records posted by concurrent processes that never open the store,
ingested exactly once -- through crashes on either side of the commit (issue 23)."""

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from benchmarks.bench_store_inbox import INGESTER, WRITER, counts
from mllife._errors import DataError
from mllife.storage.inbox import StoreInbox, ingest_inbox
from mllife.storage.store import Store

REPO = Path(__file__).resolve().parents[2]


def trials(writer: str, first: int, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"run_id": [writer] * n, "trial": list(range(first, first + n)),
         "score": [0.5] * n, "created_at": [datetime(2026, 1, 1)] * n}
    )  # fmt: skip


def ingest_in_process(inbox: Path, store: Path, crash_at: str) -> int:
    code = (
        "import sys\nfrom mllife.storage.inbox import StoreInbox, ingest_inbox\n"
        "from mllife.storage.store import Store\n"
        "ingest_inbox(Store(sys.argv[2]), StoreInbox(sys.argv[1]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(inbox), str(store)], cwd=REPO,
        env={**os.environ, "MLLIFE_CRASH_AT": crash_at},
    ).returncode  # fmt: skip


def test_eight_concurrent_writers_lose_and_double_nothing(tmp_path):
    inbox, store_path, stop = tmp_path / "inbox", tmp_path / "store.duckdb", tmp_path / "stop"
    Store(store_path).migrate()
    ingester = subprocess.Popen(
        [sys.executable, "-c", INGESTER, str(inbox), str(store_path), str(stop)], cwd=REPO
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, "inbox", str(inbox), f"w{i}", str(i * 250), "250", "25"],
            cwd=REPO,
        )  # fmt: skip
        for i in range(8)
    ]
    assert [w.wait(timeout=300) for w in writers] == [0] * 8
    stop.touch()
    assert ingester.wait(timeout=300) == 0
    ingest_inbox(Store(store_path), StoreInbox(inbox))
    assert counts(store_path) == (2000, 2000)
    assert StoreInbox(inbox).pending() == []


@pytest.mark.parametrize("crash_at", ["inbox:before-commit", "inbox:committed"])
def test_a_crash_on_either_side_of_the_commit(tmp_path, crash_at):
    inbox, store_path = StoreInbox(tmp_path / "inbox"), tmp_path / "store.duckdb"
    for i in range(3):
        inbox.post("trials", trials("w", i * 10, 10), writer="w")
    assert ingest_in_process(inbox.folder, store_path, crash_at) == -9  # SIGKILL
    assert len(inbox.pending()) == 3  # the files stay until the commit is known
    expected_now = 30 if crash_at == "inbox:committed" else 0
    assert counts(store_path) == (expected_now, expected_now)
    result = ingest_inbox(Store(store_path), inbox)
    assert counts(store_path) == (30, 30)
    assert result.already_ingested == (3 if crash_at == "inbox:committed" else 0)
    assert inbox.pending() == []


def test_a_keyed_fact_posted_twice_is_stored_once(tmp_path):
    inbox, store = StoreInbox(tmp_path / "inbox"), Store(tmp_path / "store.duckdb")
    model = pl.DataFrame({"model_hash": ["abc"], "name": ["cnn"], "kind": ["torch"]})
    inbox.post("models", model, writer="worker-1")
    inbox.post("models", model, writer="worker-2")  # the step retried on another worker
    assert ingest_inbox(store, inbox).rows == {"models": 1}
    assert store.query("SELECT count(*) AS n FROM models")["n"][0] == 1


def test_bad_segments_are_named_and_nothing_is_committed(tmp_path):
    inbox, store = StoreInbox(tmp_path / "inbox"), Store(tmp_path / "store.duckdb")
    inbox.post("trials", trials("w", 0, 5), writer="w")
    bad = inbox.post("trials", pl.DataFrame({"run_id": ["w"], "colour": ["red"]}), writer="w")
    with pytest.raises(DataError, match=rf"{bad.name} has columns \['colour'\]"):
        ingest_inbox(store, inbox)
    assert store.query("SELECT count(*) AS n FROM trials")["n"][0] == 0
    assert len(inbox.pending()) == 2  # nothing lost: both wait for the fix
    with pytest.raises(ValueError, match="'deployments' cannot be posted"):
        inbox.post("deployments", pl.DataFrame({"action": ["promote"]}), writer="w")
    with pytest.raises(ValueError, match="writer 'a/b'"):
        inbox.post("trials", trials("w", 0, 1), writer="a/b")


def test_temp_files_of_writers_killed_mid_write_are_removed_once_stale(tmp_path):
    """A writer SIGKILLed before its rename leaves a temp file that is never ingested;
    the pid in its name cannot say whether a writer on another host lives, so its age
    does: an hour-old one goes at the next ingestion, a fresh one stays."""
    inbox, store = StoreInbox(tmp_path / "inbox"), Store(tmp_path / "store.duckdb")
    inbox.post("trials", trials("w", 0, 3), writer="w")
    stale = tmp_path / "inbox" / ".trials~w9~0123.parquet.4242.tmp"
    fresh = tmp_path / "inbox" / ".trials~w9~4567.parquet.4243.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"half a segment")
    two_hours_ago = datetime.now().timestamp() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    assert ingest_inbox(store, inbox).rows == {"trials": 3}
    assert not stale.exists() and fresh.exists()
