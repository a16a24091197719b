"""Alerts reach a person, once: a local HTTP receiver stands in for Slack or Teams, and
every alert the store calls for arrives exactly once; an unreachable, failing or slow
receiver costs bounded time and leaves the alert recorded as undelivered."""

from __future__ import annotations

import json
import sys
import time

import pytest

from mllife import ConfigError
from mllife.config.project import load_config
from mllife.monitoring.alert_delivery import deliver_alerts, undelivered_alerts
from mllife.monitoring.alerts import current_alerts
from mllife.promotion.deploy import promote_model
from mllife.promotion.rollout import record_verdict
from tests.serving import Receiver, free_port, table_project


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _alerts_section(url: str, extra: str = "") -> str:
    return f'[alerts]\nwebhook = "{url}"\nmin_served = 20\nmin_labelled = 20\n{extra}'


def _served(store, model_hash: str, name: str, n: int, *, latency: float, right: int, start=0):
    """``n`` answered predictions of ``model_hash`` (as ingestion stores them), ``right``
    of them labelled correctly by feedback, the rest wrongly."""
    with store.writing() as conn:
        for i in range(start, start + n):
            pid = f"{i:032x}-0"
            conn.execute(
                "INSERT INTO predictions (prediction_id, request_id, position, received_at,"
                " key_name, model_hash, model_name, role, answered, input_hash, features,"
                " predicted, confidence, latency_ms, segment) VALUES (?, ?, 0,"
                " now()::TIMESTAMP, 'k', ?, ?, 'champion', true, ?, '{}', '1', 0.9, ?, 't')",
                [pid, f"{i:032x}", model_hash, name, str(i), latency],
            )
            label = "1" if i - start < right else "0"
            conn.execute(
                "INSERT INTO feedback VALUES (?, ?, 'k', now()::TIMESTAMP, 't')", [pid, label]
            )


def test_every_alert_the_store_calls_for_arrives_once(tmp_path, receiver):
    hook = receiver()
    project = table_project(tmp_path / "p", serving=_alerts_section(hook.url))
    config, store, hashes = project["config"], project["store"], project["hashes"]
    old, new = hashes["logreg"], hashes["logreg_small"]
    _served(store, old, "logreg", 40, latency=2.0, right=40)
    # a refused challenger, as the lifecycle records it
    refusal = "not promoted: test accuracy 0.6 < minimum 0.9"
    record_verdict(store, model_hash=new, name="logreg_small", passed=False,
                   summary=refusal, run_id="run-7")  # fmt: skip
    # a new champion: slower than the one it replaced, worse on served data than its
    # test interval, trained under other library versions, past its age limit
    promote_model(new, config=config, store=store, reason="by hand")
    store.record_split(split_version="test-split", data_version="test-data", seed=0,
                       sizes={"train": 400, "validation": 80, "test": 200})  # fmt: skip
    store.record_evaluation(model_hash=new, split="test", split_version="test-split",
                            metrics={"accuracy": 0.95}, confusion=[], run_id=None)  # fmt: skip
    _served(store, new, "logreg_small", 40, latency=9.0, right=28, start=1000)  # 0.70
    with store.writing() as conn:
        conn.execute(
            "UPDATE models SET spec = ? WHERE model_hash = ?",
            [json.dumps({"environment": {"scikit-learn": "0.1.0", "numpy": "1.0.0"}}), new],
        )
        conn.execute("UPDATE deployments SET created_at = created_at - INTERVAL 100 DAY")
        conn.execute(  # a monitor run found dataset drift in served inputs
            "INSERT INTO drift_results VALUES ('run-8', 'served', ?, 'x', 'numeric', 'ks',"
            " 0.5, 0.001, 0.4, 0.3, true, true, 100, 40, now()::TIMESTAMP),"
            " ('run-8', 'served', ?, NULL, NULL, 'share', NULL, NULL, NULL, NULL, NULL, true,"
            " 100, 40, now()::TIMESTAMP)",
            [new, new],
        )
    # the deployment moved back 100 days: the new champion's predictions came after it
    alerts = current_alerts(load_config(config.path), store)
    assert sorted(a.kind for a in alerts) == [
        "drift", "environment", "latency", "refused", "served_accuracy", "stale",
    ]  # fmt: skip
    sent = deliver_alerts(config, store, alerts)
    assert all(d.delivered for d in sent) and len(sent) == 6
    assert hook.kinds() == sorted(a.kind for a in alerts)
    texts = {b["alert"]["kind"]: b["text"] for b in hook.bodies}
    # what, which model, the figure and the next step
    assert f"challenger logreg_small {new[:12]} was refused" in texts["refused"]
    assert "test accuracy 0.6 < minimum 0.9" in texts["refused"] and "Next: " in texts["refused"]
    assert "served p95 9.0 ms over 40 predictions vs 2.0 ms over 40" in texts["latency"]
    assert "served accuracy 0.700 on 40 labelled predictions" in texts["served_accuracy"]
    assert "scikit-learn 0.1.0 -> " in texts["environment"]
    assert "deployed 100." in texts["stale"] and "1 of 1 columns drifted" in texts["drift"]
    # sent once: the next tick (or run) finds them all sent
    assert deliver_alerts(config, store, current_alerts(config, store)) == []
    assert len(hook.bodies) == 6


def test_an_unreachable_or_failing_receiver_is_retried_then_recorded(tmp_path, receiver, capsys):
    from mllife.cli import main as cli

    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    project = table_project(tmp_path / "p", serving=_alerts_section(closed, "attempts = 2"))
    config, store = project["config"], project["store"]
    record_verdict(store, model_hash=project["hashes"]["logreg_small"], name="logreg_small",
                   passed=False, summary="not promoted: x", run_id="run-1")  # fmt: skip
    sent = deliver_alerts(config, store, current_alerts(config, store))
    assert len(sent) == 1 and not sent[0].delivered and "Connection refused" in sent[0].error
    assert undelivered_alerts(store)["kind"].to_list() == ["refused"]
    assert cli(["--config", str(config.path), "status"]) == 0
    out = capsys.readouterr().out
    assert "alerts NOT delivered" in out and "refused: webhook: URLError" in out
    # a receiver that fails twice, then answers: delivered on the third attempt
    flaky = receiver(fail=2)
    text = config.path.read_text().replace(closed, flaky.url).replace("attempts = 2", "")
    config.path.write_text(text)
    config = load_config(config.path)
    record_verdict(store, model_hash=project["hashes"]["logreg_small"], name="logreg_small",
                   passed=False, summary="not promoted: y", run_id="run-2")  # fmt: skip
    sent = deliver_alerts(config, store, current_alerts(config, store))
    assert [d.delivered for d in sent] == [True] and flaky.requests == 3
    assert len(flaky.bodies) == 1 and "not promoted: y" in flaky.bodies[0]["text"]


def test_a_slow_receiver_costs_bounded_time(tmp_path, receiver):
    slow = receiver(delay=3.0)
    extra = "timeout_seconds = 0.3\nattempts = 2"
    project = table_project(tmp_path / "p", serving=_alerts_section(slow.url, extra))
    config, store = project["config"], project["store"]
    record_verdict(store, model_hash=project["hashes"]["logreg_small"], name="logreg_small",
                   passed=False, summary="not promoted: z", run_id="run-1")  # fmt: skip
    started = time.monotonic()
    sent = deliver_alerts(config, store, current_alerts(config, store))
    assert time.monotonic() - started < 2.5  # 2 x 0.3 s + 0.5 s backoff, not 2 x 3 s
    assert not sent[0].delivered and "timed out" in sent[0].error


def test_a_command_channel_gets_the_alert_as_json(tmp_path):
    out = tmp_path / "alert.json"
    command = json.dumps([sys.executable, "-c",
                          f"import sys, pathlib; pathlib.Path({str(out)!r}).write_bytes("
                          "sys.stdin.buffer.read())"])  # fmt: skip
    project = table_project(tmp_path / "p", serving=f"[alerts]\ncommand = {command}\n")
    config, store = project["config"], project["store"]
    record_verdict(store, model_hash=project["hashes"]["logreg_small"], name="logreg_small",
                   passed=False, summary="not promoted: w", run_id="run-1")  # fmt: skip
    assert [d.delivered for d in deliver_alerts(config, store, current_alerts(config, store))] == [
        True
    ]
    assert json.loads(out.read_text())["alert"]["kind"] == "refused"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('webhook = "hooks.slack.com/services/x"', r"alerts\.webhook"),
        ('webhook = "ftp://example.com/x"', r"alerts\.webhook"),
        ('email = "nobody"', r"alerts\.email"),
        ("attempts = 0", r"alerts\.attempts"),
    ],
)
def test_a_malformed_alert_setting_is_a_config_error_naming_the_key(tmp_path, setting, message):
    (tmp_path / "mllife.toml").write_text(
        f'[[candidates]]\nname = "lr"\nkind = "sklearn"\nestimator = "a.B"\n[alerts]\n{setting}\n'
    )
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "mllife.toml")


def test_the_alerts_sensor_sends_what_is_due_once(tmp_path, receiver):
    import dagster as dg

    from assets.definitions import build_definitions
    from assets.graph.resources import MllifeProject

    hook = receiver()
    project = table_project(tmp_path / "p", serving=_alerts_section(hook.url))
    config, store = project["config"], project["store"]
    record_verdict(store, model_hash=project["hashes"]["logreg_small"], name="logreg_small",
                   passed=False, summary="not promoted: v", run_id="run-1")  # fmt: skip
    sensor = build_definitions(config.path).resolve_sensor_def("alerts")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING  # a channel is set
    with dg.instance_for_test() as instance:
        for _ in range(2):  # the second tick finds it sent
            context = dg.build_sensor_context(
                instance=instance,
                resources={"project": MllifeProject(config_path=str(config.path))},
            )
            sensor(context)
    assert hook.kinds() == ["refused"]


def test_served_rows_older_than_keep_days_are_forgotten_at_ingestion(tmp_path):
    from mllife.monitoring.traffic import ingest_segments

    project = table_project(tmp_path / "p", serving="[monitoring]\nkeep_days = 30\n")
    config, store = project["config"], project["store"]
    champion = project["hashes"]["logreg"]
    _served(store, champion, "logreg", 3, latency=1.0, right=3)
    _served(store, champion, "logreg", 2, latency=1.0, right=2, start=100)
    with store.writing() as conn:  # two of them (and their labels) 40 days old
        for table in ("predictions", "feedback"):
            conn.execute(
                f"UPDATE {table} SET received_at = received_at - INTERVAL 40 DAY"
                " WHERE prediction_id LIKE '00000000000000000000000000000064-%'"
                " OR prediction_id LIKE '00000000000000000000000000000065-%'"
            )
    ingest_segments(config, store)  # nothing pending; the retention still applies
    kept = store.query("SELECT prediction_id FROM predictions ORDER BY 1")["prediction_id"]
    assert kept.to_list() == [f"{i:032x}-0" for i in range(3)]
    assert store.query("SELECT count(*) AS n FROM feedback")["n"][0] == 3
