"""Many writers, one store: records posted to the store's inbox by concurrent processes
while another process ingests them, then counted (issue 23).

    python benchmarks/bench_store_inbox.py [--writers 8] [--records 10000] [--per-segment 50]

Each writer posts its share of ``trials`` rows (run_id = the writer, trial = 0..n-1) as
segments of ``--per-segment`` rows; an ingester process ingests every 20 ms meanwhile,
and once more after the writers finish. Target: 0 lost, 0 duplicated. For scale, the
same records written by the same writers straight into the DuckDB file (each write
waiting for the file's lock, the one-host way) are timed in the same run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WRITER = """
import sys
from datetime import datetime
import polars as pl
from mllife.storage.inbox import StoreInbox
from mllife.storage.store import Store
mode, target, writer, first, count, per = sys.argv[1:7]
first, count, per = int(first), int(count), int(per)
inbox, store = StoreInbox(target), Store(target)
for start in range(first, first + count, per):
    trials = list(range(start, min(start + per, first + count)))
    n = len(trials)
    rows = pl.DataFrame({"run_id": [writer] * n, "trial": trials, "score": [0.5] * n,
                         "created_at": [datetime.now()] * n})
    if mode == "inbox":
        inbox.post("trials", rows, writer=writer)
    else:
        with store.writing() as conn:
            conn.executemany("INSERT INTO trials (run_id, trial, score, created_at)"
                             " VALUES (?, ?, ?, ?)", rows.rows())
"""

INGESTER = """
import sys, time
from pathlib import Path
from mllife.storage.inbox import StoreInbox, ingest_inbox
from mllife.storage.store import Store
inbox, store, stop = StoreInbox(sys.argv[1]), Store(sys.argv[2]), Path(sys.argv[3])
while not stop.exists():
    ingest_inbox(store, inbox)
    time.sleep(0.02)
"""


def counts(store_path: Path) -> tuple[int, int]:
    from mllife.storage.store import Store

    frame = Store(store_path).query(
        "SELECT count(*) AS n, count(DISTINCT (run_id, trial)) AS distinct_rows FROM trials"
    )
    return int(frame["n"][0]), int(frame["distinct_rows"][0])


def run_writers(mode: str, target: Path, writers: int, records: int, per: int) -> float:
    share = records // writers
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                mode,
                str(target),
                f"w{i}",
                str(i * share),
                str(share),
                str(per),
            ],
            cwd=REPO,
        )  # fmt: skip
        for i in range(writers)
    ]
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"a {mode} writer failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--per-segment", type=int, default=50)
    args = parser.parse_args()
    from mllife.storage.inbox import StoreInbox, ingest_inbox
    from mllife.storage.store import Store

    root = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    inbox_dir, store_path, stop = root / "inbox", root / "store.duckdb", root / "stop"
    Store(store_path).migrate()
    ingester = subprocess.Popen(
        [sys.executable, "-c", INGESTER, str(inbox_dir), str(store_path), str(stop)], cwd=REPO
    )
    posting = run_writers("inbox", inbox_dir, args.writers, args.records, args.per_segment)
    stop.touch()
    if ingester.wait() != 0:
        raise RuntimeError("the ingester failed")
    started = time.perf_counter()
    ingest_inbox(Store(store_path), StoreInbox(inbox_dir))
    drain = time.perf_counter() - started
    total, distinct = counts(store_path)
    expected = args.records // args.writers * args.writers
    print(f"inbox: {args.writers} writers posted {expected} records in {posting:.2f} s"
          f" (last ingestion after they finished: {drain:.2f} s); store holds {total} rows,"
          f" {distinct} distinct: {expected - distinct} lost, {total - distinct} duplicated"
          " (target 0 and 0)")  # fmt: skip
    direct_path = root / "direct.duckdb"
    Store(direct_path).migrate()
    direct = run_writers("direct", direct_path, args.writers, args.records, args.per_segment)
    total, distinct = counts(direct_path)
    print(
        f"baseline, straight into the DuckDB file (one host only): {direct:.2f} s,"
        f" {total} rows; posting took {posting / direct:.2f}x its time"
    )


if __name__ == "__main__":
    main()
