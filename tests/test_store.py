import multiprocessing
import time

import duckdb
import polars as pl
import pytest

from mllife import StoreError, StoreLockedError
from mllife.storage.store import MIGRATIONS, Store


def test_migrations_apply_once_and_record_their_version(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    assert store.migrate() == len(MIGRATIONS)
    assert Store(tmp_path / "s.duckdb").migrate() == len(MIGRATIONS)
    with store.reading() as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def test_evaluations_round_trip(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    store.record_evaluation(
        model_hash="m",
        split="validation",
        split_version="s",
        metrics={"accuracy": 0.9, "macro_f1": 0.8},
        confusion=[("a", "a", 9), ("a", "b", 1)],
        run_id="r",
    )
    frame = store.evaluations(model_hash="m")
    assert dict(zip(frame["metric"], frame["value"], strict=True)) == {
        "accuracy": 0.9,
        "macro_f1": 0.8,
    }


def _deploy(store, model_hash, expected):
    return store.record_deployment(
        action="promote",
        model_hash=model_hash,
        name="x",
        data_version="d",
        reason="r",
        decision={"passed": True},
        run_id=None,
        expected_previous=expected,
    )


def test_champion_switches_only_from_the_expected_previous(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    assert store.champion() is None
    first = _deploy(store, "h1", None)
    assert first.model_hash == "h1" and first.previous_hash is None
    second = _deploy(store, "h2", "h1")
    assert second.previous_hash == "h1"
    with pytest.raises(StoreError, match="champion changed"):
        _deploy(store, "h3", "h1")  # a stale decision must not overwrite h2
    assert store.champion().model_hash == "h2"
    assert store.deployments().height == 2


def test_failed_transaction_writes_nothing(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    with pytest.raises(RuntimeError), store.writing() as conn:
        conn.execute("INSERT INTO datasets (data_version) VALUES ('v')")
        raise RuntimeError("crash in the middle")
    assert store.datasets().height == 0


def _hold_lock(path, seconds, ready):
    conn = duckdb.connect(str(path))
    ready.set()
    time.sleep(seconds)
    conn.close()


def test_writer_waits_for_another_process_then_writes(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).migrate()
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(path, 1.5, ready))
    holder.start()
    ready.wait(10)
    Store(path, lock_timeout=20).record_test_read(
        split_version="s", model_hash="m", asset="a", run_id=None, n_rows=3
    )
    holder.join()
    assert Store(path).test_read_count() == 1


def test_lock_timeout_is_a_clear_error(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).migrate()
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(path, 3, ready))
    holder.start()
    ready.wait(10)
    try:
        with pytest.raises(StoreLockedError, match="locked by another process"):
            Store(path, lock_timeout=0.5).record_test_read(
                split_version="s", model_hash="m", asset="a", run_id=None, n_rows=3
            )
    finally:
        holder.join()


def test_a_store_from_an_older_version_upgrades_in_place(tmp_path):
    path = tmp_path / "old.duckdb"
    conn = duckdb.connect(str(path))  # what version 1 of mllife created
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)"
    )
    conn.execute(MIGRATIONS[0])
    conn.execute("INSERT INTO schema_migrations VALUES (1, now())")
    conn.execute("INSERT INTO datasets (data_version, n_rows) VALUES ('v1', 10)")
    conn.close()
    store = Store(path)
    assert store.migrate() == len(MIGRATIONS) >= 2
    assert store.datasets()["data_version"].to_list() == ["v1"]  # old rows kept
    store.record_trials(
        run_id="r",
        candidate="c",
        metric="macro_f1",
        chosen=0,
        model_hash="h",
        data_version="v1",
        split_version="s",
        trials=[
            {
                "index": 0,
                "params": {"C": 1},
                "score": 0.9,
                "validation_score": 0.9,
                "status": "ok",
                "error": None,
                "seconds": 0.1,
            }
        ],
    )
    assert store.trials()["chosen"].to_list() == [True]


def _search(run_id: str, lineage: str, candidate: str = "cnn") -> dict:
    trial = {"params": {"lr": 0.1}, "score": 0.9, "validation_score": 0.9, "status": "ok",
             "error": None, "seconds": 1.0}  # fmt: skip
    return dict(
        run_id=run_id, candidate=candidate, metric="macro_f1", chosen=1, model_hash="h",
        data_version="d", split_version="s", lineage=lineage,
        trials=[{**trial, "index": 0}, {**trial, "index": 1}],
    )  # fmt: skip


def test_a_re_executed_search_replaces_its_trials_in_the_store_and_through_the_inbox(tmp_path):
    """A training step stopped after it wrote its trials (Ctrl-C, a killed worker) is
    re-executed by the resume, in a run of its own with the same lineage: its trials are
    counted once, directly or posted by a team worker; another training adds its own."""
    from mllife.storage.inbox import PostingRecorder, StoreInbox, ingest_inbox

    store = Store(tmp_path / "s.duckdb")
    store.migrate()
    store.record_trials(**_search("run-1", "run-1"))
    store.record_trials(**_search("run-2", "run-1"))  # the resume of run-1
    store.record_trials(**_search("run-2", "run-1", candidate="logreg"))
    trials = store.trials()
    assert trials.height == 4
    assert trials.filter(pl.col("candidate") == "cnn")["run_id"].to_list() == ["run-2"] * 2
    assert trials["lineage"].unique().to_list() == ["run-1"]
    store.record_trials(**_search("run-3", "run-3"))  # a later training of its own
    assert store.trials().height == 6

    inbox = StoreInbox(tmp_path / "inbox")
    worker = PostingRecorder(inbox, writer="host-b")
    worker.record_trials(**_search("run-4", "run-4"))
    worker.record_trials(**_search("run-5", "run-4"))  # resumed on another worker
    # the newer set ingested first, the older one after it: the newer set stays
    (older,) = [p for p in inbox.pending() if "run-4" in pl.read_parquet(p)["run_id"].to_list()]
    older.rename(tmp_path / older.name)
    ingest_inbox(store, inbox)
    (tmp_path / older.name).rename(older)
    ingest_inbox(store, inbox)
    resumed = store.trials().filter(pl.col("lineage") == "run-4")
    assert resumed["run_id"].to_list() == ["run-5"] * 2
    assert store.trials().height == 8


def test_the_instance_settings_turn_dagsters_dialog_off_and_upgrade_unedited_files(tmp_path):
    from mllife.storage import instance_settings as settings

    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(settings._PREVIOUS_SETTINGS)  # last version's file
    written = settings.write_instance_settings(home).read_text()
    assert "nux:\n  enabled: false" in written and "telemetry:\n  enabled: false" in written
    edited = written.replace("granularity: op", "granularity: run")  # a person's edit
    (home / "dagster.yaml").write_text(edited)
    assert settings.write_instance_settings(home).read_text() == edited  # kept as it is
