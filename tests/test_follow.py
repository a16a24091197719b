"""`mllife run` follows a launched run through the event log and must read every event
of it, even the ones the run writes in its last moment (the failed check that stopped
it, the failed step), however the reads interleave with the run finishing."""

from types import SimpleNamespace

import dagster as dg

from assets.runtime import launch


@dg.asset
def table():
    return 1


@dg.asset_check(asset=table, blocking=True)
def table_contract():
    return dg.AssetCheckResult(passed=False, metadata={"summary": "column x is missing"})


@dg.asset(deps=[table])
def after_table():
    return 2


class _FinishingWhileRead:
    """A real finished run's instance, replayed as if the run were still writing: it
    writes one more event between one status read and the next, and reads as finished
    only once all of them are written (Dagster stores the run's last event before it
    marks the run finished)."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str) -> None:
        self._run = instance.get_run_by_id(run_id)
        self._records = instance.get_records_for_run(run_id, limit=10_000).records
        self._written = 0

    def _tick(self) -> None:
        self._written = min(self._written + 1, len(self._records))

    def get_run_by_id(self, run_id: str):
        self._tick()
        if self._written < len(self._records):
            return self._run.with_status(dg.DagsterRunStatus.STARTED)
        return self._run

    def get_records_for_run(self, run_id: str, *, cursor=None, limit=500):
        start = int(cursor or 0)
        end = min(self._written, start + limit)
        return SimpleNamespace(
            records=self._records[start:end], cursor=str(end), has_more=end < self._written
        )


def test_a_run_that_finishes_between_reads_is_read_to_its_last_event(monkeypatch, tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            [table, table_contract, after_table], instance=instance, raise_on_error=False
        )
        assert not result.success
        replay = _FinishingWhileRead(instance, result.run_id)
        monkeypatch.setattr(launch, "monitor_runs", lambda *a, **k: None)
        monkeypatch.setattr(launch, "POLL_S", 0.0)
        followed = launch.follow(replay, result.run_id, total_steps=3)

        assert not followed.success
        assert len(followed.all_events) == len(
            [r for r in replay._records if r.event_log_entry.dagster_event is not None]
        )
        [evaluation] = followed.get_asset_check_evaluations()
        assert evaluation.check_name == "table_contract" and not evaluation.passed
        failed = [e.step_key for e in followed.all_events if e.is_step_failure]
        assert failed == ["table_table_contract"]
