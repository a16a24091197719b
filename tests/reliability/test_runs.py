"""Whole lifecycle runs under concurrency and crashes, against one store.

The invariant: whatever happens -- candidates trained in parallel processes, two runs
at once, a SIGKILL mid-training or mid-transaction followed by ``--resume`` -- the store
ends with exactly the rows a clean sequential run writes (none lost, none doubled), the
champion is the same model, and no half-written file is left behind.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.runtime.launch import monitor_runs
from assets.runtime.run import prepare_instance
from mllife.config.project import load_config
from mllife.storage.store import Store
from tests.conftest import copy_project, make_project


@pytest.fixture(scope="session")
def digits_folder(small_digits_folder):
    """Every run of this module works on the small digits: the invariants compare runs
    with a clean run of the same data, not accuracies."""
    return small_digits_folder


#: every table a lifecycle run writes
TABLES = [
    "datasets",
    "splits",
    "split_assignments",
    "models",
    "trials",
    "evaluations",
    "confusion",
    "test_reads",
    "pattern_results",
    "challengers",
    "deployments",
    "drift_results",
]


def row_counts(config_path: Path) -> dict[str, int]:
    store = Store(load_config(config_path).store_path)
    return {t: int(store.query(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in TABLES}


def run_process(config_path: Path, *args: str, crash_at: str = "") -> subprocess.Popen:
    """``python -m assets.runtime.run`` -- what ``mllife run`` starts -- as its own process."""
    return subprocess.Popen(
        [sys.executable, "-m", "assets.runtime.run", "--config", str(config_path), *args],
        cwd=config_path.parent,
        env={**os.environ, "MLLIFE_CRASH_AT": crash_at},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=900)
    return process.returncode, output


def _instance(config_path: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(load_config(config_path).dagster_home))


def half_written_files(config_path: Path) -> list[Path]:
    """Temp files of ``write_atomically`` (``.<name>.<random>``) and DuckDB leftovers."""
    config = load_config(config_path)
    folders = [config.artifacts_dir, config.dagster_home / "storage", config.state_dir]
    return [
        path
        for folder in folders
        if folder.exists()
        for path in folder.rglob(".*")
        if path.is_file() and not path.name.endswith((".gitignore", ".dvcignore"))
    ]


def assert_no_lock_error_reached_the_user(output: str) -> None:
    for text in ("StoreLockedError", "Could not set lock", "Conflicting lock"):
        assert text not in output, output[-3000:]


@pytest.fixture(scope="module")
def clean(tmp_path_factory, clean_small_run):
    """Row counts and champion of one clean, sequential run (the session's, copied): what
    every other run must reproduce."""
    config_path = copy_project(clean_small_run, tmp_path_factory.mktemp("clean") / "p")
    champion = Store(load_config(config_path).store_path).champion()
    return row_counts(config_path), champion.model_hash


def test_multiprocess_executor_trains_candidates_in_parallel_and_loses_no_rows(
    clean, tmp_path, digits_folder
):
    counts, champion = clean
    config_path = make_project(tmp_path / "p", digits_folder, epochs=2)
    code, output = finish(run_process(config_path, "--executor", "multiprocess"))
    assert code == 0, output[-3000:]
    assert_no_lock_error_reached_the_user(output)

    config = load_config(config_path)
    (run,) = _instance(config_path).get_runs(limit=1)
    spans = {}
    for record in _instance(config_path).all_logs(run.run_id):
        event = record.dagster_event
        if event is None or not (event.step_key or "").startswith("candidate_"):
            continue
        # a step's process lives from its launch to its success; the steps' own work is
        # about 1 s after a 6 s import, so comparing STEP_START times alone is a race
        if event.event_type == dg.DagsterEventType.STEP_WORKER_STARTING:
            spans.setdefault(event.step_key, [0.0, 0.0])[0] = record.timestamp
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            spans[event.step_key][1] = record.timestamp
    overlapping = [
        (a, b)
        for a in spans
        for b in spans
        if a < b and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]
    ]
    print(f"\nmultiprocess: candidate steps {sorted(spans)}; overlapping pairs {overlapping}")
    assert len(spans) == 3 and overlapping, spans

    after = row_counts(config_path)
    lost = {t: counts[t] - after[t] for t in TABLES if after[t] != counts[t]}
    print(f"multiprocess: rows per table {after}; differences from a sequential run {lost}")
    assert after == counts
    assert Store(config.store_path).champion().model_hash == champion


def test_two_runs_at_once_keep_store_and_champion_consistent(clean, tmp_path, digits_folder):
    counts, champion = clean
    config_path = make_project(tmp_path / "p", digits_folder, epochs=2)
    first, second = run_process(config_path), run_process(config_path)
    results = [finish(first), finish(second)]
    for code, output in results:
        assert code == 0, output[-3000:]
        assert_no_lock_error_reached_the_user(output)
    summaries = "\n".join(output for _, output in results)
    assert summaries.count("champion (promoted)") == 1, summaries[-3000:]
    assert summaries.count("champion (unchanged)") == 1

    after = row_counts(config_path)
    # Per-run history doubles; facts about data and models are recorded once.
    for table in ("trials", "test_reads", "challengers"):
        assert after[table] == 2 * counts[table], (table, after, counts)
    for table in (
        "datasets",
        "splits",
        "split_assignments",
        "models",
        "evaluations",
        "pattern_results",
    ):
        assert after[table] == counts[table], (table, after, counts)
    store = Store(load_config(config_path).store_path)
    deployments = store.deployments()
    assert deployments["action"].to_list() == ["promote"]
    assert store.champion().model_hash == champion
    print(f"\ntwo runs at once: rows {after}; one promotion of {champion[:12]}")


@pytest.mark.parametrize(
    "crashes",
    [
        # SIGKILL inside an early store transaction (the data stage); then its resumption
        # SIGKILLed while the CNN trains
        ("store:before-commit#4", "training:epoch"),
        # inside a later one (models, trials, evaluations); then its resumption killed
        # inside the champion switch itself
        ("store:before-commit#12", "deployment:before-commit"),
    ],
    ids=lambda crashes: " then ".join(crashes),
)
def test_sigkill_then_resume_completes_the_run_with_no_row_lost_or_doubled(
    clean, tmp_path, digits_folder, crashes
):
    """Each crash point kills a run; the second kills the run that resumes the first (a
    resumption crashes like any run); the last resumption completes the run."""
    counts, champion = clean
    config_path = make_project(tmp_path / "p", digits_folder, epochs=2)
    resume: tuple[str, ...] = ()
    for crash_at in crashes:
        code, output = finish(run_process(config_path, *resume, crash_at=crash_at))
        # the run worker died, not `mllife run`: Dagster marks the run failed and says why
        assert code == 1, f"expected a failed run at {crash_at}, got {code}:\n{output[-3000:]}"
        assert re.search(r"^run \S+: FAILED$", output, re.MULTILINE), output[-3000:]
        assert "was terminated by signal 9 (SIGKILL)" in output, output[-3000:]
        (killed,) = _instance(config_path).get_runs(limit=1)
        assert killed.status == dg.DagsterRunStatus.FAILURE
        store = Store(load_config(config_path).store_path)
        assert store.champion() is None  # no half-switched champion; the store opens fine
        assert half_written_files(config_path) == []
        crashed = row_counts(config_path)
        print(f"\n{crash_at}: rows at the crash {crashed}")
        resume = ("--resume",)

    code, output = finish(run_process(config_path, "--resume"))
    assert code == 0, output[-3000:]
    assert re.search(r"^run \S+: success$", output, re.MULTILINE), output[-3000:]
    # the summary reports every candidate and the champion, also those the killed runs
    # had already finished (the last resumption does not re-run them)
    assert re.search(r"^resumes run \S+: steps done there are not re-run", output, re.MULTILINE)
    for spec in load_config(config_path).models_to_train:
        assert re.search(
            rf"^  {spec.name} +validation accuracy [01]\.\d+ macro F1", output, re.MULTILINE
        ), (
            spec.name,
            output[-3000:],
        )
    assert f"champion (promoted): {store.champion().name} " in output, output[-3000:]
    after = row_counts(config_path)
    print(f"after the last resumption {after}")
    # test_reads is an audit log of every read of the sealed test set: an evaluation
    # killed after its read and then re-executed did read it twice, and says so.
    assert counts["test_reads"] <= after["test_reads"] <= counts["test_reads"] + len(crashes)
    after["test_reads"] = counts["test_reads"]
    assert after == counts, {t: (after[t], counts[t]) for t in TABLES if after[t] != counts[t]}
    assert store.champion().model_hash == champion
    assert half_written_files(config_path) == []


def test_resume_refuses_a_run_that_succeeded_or_is_still_running(clean, tmp_path, digits_folder):
    config_path = make_project(tmp_path / "p", digits_folder, epochs=1)
    code, output = finish(run_process(config_path, "--job", "monitor"))
    assert code == 0, output[-3000:]
    code, output = finish(run_process(config_path, "--resume"))
    assert code == 2 and "succeeded: there is nothing to resume" in output


def test_ctrl_c_terminates_the_run_through_the_instance_and_resume_finishes_it(
    clean, tmp_path, digits_folder
):
    """Ctrl-C in the terminal stops the run; the run resuming it is stopped from the UI
    (its Terminate button); the next resumption completes the run."""
    counts, champion = clean
    config_path = make_project(tmp_path / "p", digits_folder, epochs=2)
    resume: tuple[str, ...] = ()
    for how in ("ctrl-c", "terminate in the UI"):
        process = run_process(config_path, *resume)
        seen = []
        for line in process.stdout:
            seen.append(line)
            if re.match(r"\[\d+/\d+ steps\] candidate_\w+ done", line):
                if how == "ctrl-c":
                    process.send_signal(signal.SIGINT)  # what Ctrl-C in its terminal sends
                else:  # what the UI's Terminate button calls
                    instance = _instance(config_path)
                    (running,) = instance.get_runs(limit=1)
                    # another `mllife run` monitoring the instance meanwhile takes the
                    # resumption for the running run it is, not for its dead parent's
                    monitor_runs(instance)
                    running = instance.get_run_by_id(running.run_id)
                    assert running.status == dg.DagsterRunStatus.STARTED, running.status
                    instance.run_coordinator.cancel_run(running.run_id)
                break
        code, rest = finish(process)
        output = "".join(seen) + rest
        assert code == 1, (how, output[-3000:])
        assert re.search(r"^run \S+: terminated$", output, re.MULTILINE), output[-3000:]
        (run,) = _instance(config_path).get_runs(limit=1)
        assert run.status == dg.DagsterRunStatus.CANCELED  # terminated by its launcher
        assert Store(load_config(config_path).store_path).champion() is None
        assert half_written_files(config_path) == []
        # no pool slot stays claimed by the terminated run
        instance = _instance(config_path)
        storage = instance.event_log_storage
        for pool in storage.get_concurrency_keys():
            assert storage.get_concurrency_info(pool).claimed_slots == [], (how, pool)
        resume = ("--resume",)

    code, output = finish(run_process(config_path, "--resume"))
    assert code == 0, output[-3000:]
    after = row_counts(config_path)
    assert counts["test_reads"] <= after["test_reads"] <= counts["test_reads"] + 2
    after["test_reads"] = counts["test_reads"]
    assert after == counts, {t: (after[t], counts[t]) for t in TABLES if after[t] != counts[t]}
    assert Store(load_config(config_path).store_path).champion().model_hash == champion


def test_a_run_is_not_resumed_against_an_edited_config(tmp_path, digits_folder):
    config_path = make_project(tmp_path / "p", digits_folder, epochs=1)
    code, output = finish(run_process(config_path, crash_at="training:epoch"))
    assert code == 1, output[-3000:]
    config_path.write_text(config_path.read_text().replace("C = 0.5", "C = 0.7"))
    code, output = finish(run_process(config_path, "--resume"))
    assert code == 1
    assert "changed while run" in output and "start a new run" in output, output[-3000:]
    assert Store(load_config(config_path).store_path).champion() is None


def test_a_store_writing_step_waits_for_the_pool_slot_another_run_holds(tmp_path, digits_folder):
    """The single-writer steps are serialized across runs by Dagster's concurrency pools
    (one slot each, from the instance settings), not by locks of mllife's own."""
    config_path = make_project(tmp_path / "p", digits_folder, epochs=1)
    prepare_instance(load_config(config_path))
    instance = _instance(config_path)  # held: its storage refers back to it
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default("mllife_store")
    assert storage.get_concurrency_info("mllife_store").slot_count == 1
    assert storage.claim_concurrency_slot("mllife_store", "other-run", "its_step").is_claimed

    process = run_process(config_path, "--job", "monitor")
    deadline = time.monotonic() + 300
    while True:  # until the run's first store step asks for the slot and waits
        waiting = storage.get_concurrency_info("mllife_store").pending_steps
        if any(step.run_id != "other-run" for step in waiting):
            break
        assert process.poll() is None, finish(process)[1][-3000:]
        assert time.monotonic() < deadline, "the run never asked for the mllife_store slot"
        time.sleep(0.5)
    (run,) = instance.get_runs(limit=1)
    started = {
        r.event_log_entry.step_key
        for r in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
    }
    assert "raw_data" not in started  # blocked while the other run holds the slot
    storage.free_concurrency_slots_for_run("other-run")
    code, output = finish(process)
    assert code == 0, output[-3000:]
    assert storage.get_concurrency_info("mllife_store").claimed_slots == []
