"""Staged rollout: only a challenger that passed every gate is staged; it is judged on
the predictions and feedback a real server logged, and promoted or withdrawn by the
rule (or by hand); every transition is recorded and shown by `mllife status`."""

from __future__ import annotations

import numpy as np
import pytest

from mllife import ConfigError, PromotionError
from mllife.cli import main as cli
from mllife.config.project import load_config
from mllife.monitoring.traffic import ingest_segments
from mllife.promotion.deploy import promote_model
from mllife.promotion.rollout import (
    promote_staged,
    record_verdict,
    rollout_history,
    stage,
    staged_challenger,
    withdraw,
)
from mllife.promotion.rollout_rule import Evidence, judge, rollout_evidence
from mllife.serve.keys import create_key
from tests.serving import ServerProcess, table_project

BASE = '[[candidates]]\nname = "lr"\nkind = "sklearn"\nestimator = "a.B"\n'


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ("stage = true", "serving.rollout.stage = true needs serving.rollout.mode"),
        ('mode = "canary"\nshare = 1.5', "serving.rollout.share"),
        ('mode = "canary"\nshare = 0', "serving.rollout.share"),
        ('mode = "canary"\nshare = -0.1', "serving.rollout.share"),
        ('mode = "canary"\nmax_days = 0', "serving.rollout.max_days"),
        ('mode = "canary"\nmax_accuracy_drop = 1.5', "serving.rollout.max_accuracy_drop"),
        ('challenger = "abc123"', "mllife stage abc123"),
    ],
)
def test_rollout_settings_that_cannot_work_are_config_errors(tmp_path, rollout, message):
    (tmp_path / "mllife.toml").write_text(f"{BASE}[serving.rollout]\n{rollout}\n")
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(tmp_path / "mllife.toml")


RULE = (
    '[serving.rollout]\nmode = "shadow"\nstage = true\nmin_predictions = 60\n'
    "min_feedback = 40\n[serving.log]\nflush_seconds = 0.2"
)


def _serve_and_label(project, n: int, *, client: str) -> None:
    key = create_key(project["store"], client)
    with ServerProcess(project["config"].path) as server:
        status, body = server.request("POST", "/predict", {"rows": project["rows"][:n]}, key=key)
        assert status == 200 and body["model"] == "logreg"  # the champion answers
        feedback = [
            {"prediction_id": p["id"], "label": str(y)}
            for p, y in zip(body["predictions"], project["labels"][:n], strict=True)
        ]
        assert server.request("POST", "/feedback", {"feedback": feedback}, key=key)[0] == 202
    ingest_segments(project["config"], project["store"])


def test_a_staged_challenger_is_judged_on_served_feedback(tmp_path, capsys):
    project = table_project(tmp_path / "p", serving=RULE)
    store, hashes = project["store"], project["hashes"]
    _passed_every_gate(store, hashes["logreg_small"])
    staged = stage(store, model_hash=hashes["logreg_small"], name="logreg_small",
                   reason="passed every gate")  # fmt: skip
    assert staged_challenger(store) == staged

    _serve_and_label(project, 30, client="alice")  # too little traffic for the rule
    champion = store.champion().model_hash
    evidence = rollout_evidence(store, staged, champion)
    assert (evidence.predictions, evidence.feedback, evidence.champion_feedback) == (30, 30, 30)
    verdict, why = judge(evidence, project["config"].serving.rollout)
    assert verdict == "wait" and "30 of 60 predictions" in why

    _serve_and_label(project, 100, client="bob")
    evidence = rollout_evidence(store, staged, champion)
    assert (evidence.predictions, evidence.feedback) == (130, 130)
    logged = store.query(
        "SELECT model_hash, predicted FROM predictions ORDER BY received_at, request_id, position"
    )
    labels = np.concatenate([project["labels"][:30], project["labels"][:100]]).astype(str)
    for model, field in ((hashes["logreg_small"], "accuracy"), (champion, "champion_accuracy")):
        # the same requests, the order of each request's rows kept: paired accuracy
        predicted = logged.filter(logged["model_hash"] == model)["predicted"].to_numpy()
        expected = float(np.mean(predicted.astype(str) == labels))
        assert getattr(evidence, field) == pytest.approx(expected)
    assert 0.5 < evidence.agreement <= 1.0
    # two requests each, none failed, latencies logged for both models
    assert (evidence.requests, evidence.champion_requests, evidence.failures) == (2, 2, 0)
    assert evidence.p95_ms > 0 and evidence.champion_p95_ms > 0
    verdict, why = judge(evidence, project["config"].serving.rollout)
    _, low, high = evidence.accuracy_difference()
    drop = project["config"].serving.rollout.max_accuracy_drop
    expected = "promote" if low >= -drop else "withdraw" if high < -drop else "wait"
    assert verdict == expected and "95% interval" in why, why
    better = verdict == "promote"
    if better:
        promote_staged(store, staged, reason=why, evidence=evidence, run_id=None)
        assert store.champion().model_hash == hashes["logreg_small"]
    else:
        withdraw(store, reason=why, evidence=evidence)
        assert store.champion().model_hash == champion
    assert staged_challenger(store) is None
    assert rollout_history(store)["state"].to_list() == [
        "promoted" if better else "withdrawn",
        "staged",
    ]
    assert cli(["--config", str(project["config"].path), "status"]) == 0
    out = capsys.readouterr().out
    assert "rollout history (newest first):" in out and "staged    logreg_small" in out


def _passed_every_gate(store, model_hash: str, *, name: str = "logreg_small") -> None:
    # what the lifecycle's challenger asset records for a challenger the gates passed
    record_verdict(store, model_hash=model_hash, name=name, passed=True,
                   summary="passed every gate", run_id="run-1")  # fmt: skip


def test_rule_decides_by_the_interval_of_the_accuracy_difference():
    rule = load_rule(max_accuracy_drop=0.02)
    # 1 point below the champion on 10,000 labels each: within the allowed 2, surely
    close = Evidence(20000, 10000, 10000, 0.90, 0.91, None)
    verdict, why = judge(close, rule)
    assert verdict == "promote" and "difference -1.0 points" in why, why
    worse = Evidence(2000, 1000, 1000, 0.85, 0.91, None)
    verdict, why = judge(worse, rule)
    assert verdict == "withdraw" and "worse than the allowed drop -2.0 beyond chance" in why
    # the old rule promoted this on 100 labels: the interval spans the allowed drop
    unsure = Evidence(500, 100, 100, 0.90, 0.91, None)
    verdict, why = judge(unsure, rule)
    assert verdict == "wait" and "too close to call" in why


def test_a_challenger_never_judged_ends_with_a_clear_verdict():
    rule = load_rule(max_days=7)
    starved = Evidence(3, 0, 0, None, None, None, requests=3, staged_days=8.5)
    verdict, why = judge(starved, rule)
    assert verdict == "withdraw" and why.startswith("never judged: after 8.5 days (7 allowed)")
    assert "3 of 10 predictions" in why and "larger [serving.rollout] share" in why
    assert judge(Evidence(3, 0, 0, None, None, None, staged_days=6.0), rule)[0] == "wait"
    unsure = Evidence(500, 100, 100, 0.90, 0.91, None, staged_days=30)
    verdict, why = judge(unsure, rule)
    assert verdict == "withdraw" and "never judged" in why and "too close to call" in why


def test_errors_and_latency_withdraw_before_labels_arrive():
    rule = load_rule()
    failing = Evidence(480, 0, 0, None, None, None, requests=480, failures=20,
                       champion_requests=4500, champion_failures=1)  # fmt: skip
    verdict, why = judge(failing, rule)
    assert verdict == "withdraw" and why.startswith("5xx rate 4.0% (20 of 500 requests)")
    slow = Evidence(480, 0, 0, None, None, None, requests=480, p95_ms=31.0, champion_p95_ms=10.0)
    verdict, why = judge(slow, rule)
    assert verdict == "withdraw" and "p95 latency 31.0 ms vs champion 10.0 ms" in why
    fine = Evidence(480, 0, 0, None, None, None, requests=480, p95_ms=11.0, champion_p95_ms=10.0)
    assert judge(fine, rule)[0] == "wait"


def load_rule(**settings):
    from mllife.config.ops import RolloutConfig

    return RolloutConfig(mode="shadow", stage=True, min_predictions=10, min_feedback=10,
                         **settings)  # fmt: skip


def test_transitions_by_hand_are_recorded(tmp_path):
    project = table_project(tmp_path / "p", serving='[serving.rollout]\nmode = "canary"')
    store, hashes, config = project["store"], project["hashes"], project["config"]
    _passed_every_gate(store, hashes["logreg_small"])
    with pytest.raises(PromotionError, match="nothing to withdraw"):
        withdraw(store, reason="x")
    with pytest.raises(PromotionError, match="is the champion"):
        stage(store, model_hash=hashes["logreg"], name="logreg", reason="x")
    args = ["--config", str(config.path)]
    assert cli([*args, "stage", hashes["logreg_small"][:10], "--reason", "try it"]) == 0
    assert cli([*args, "withdraw", "--reason", "complaints"]) == 0
    assert cli([*args, "stage", hashes["logreg_small"][:10], "--reason", "again"]) == 0
    # promoting the staged model by hand closes its rollout in the same transaction
    promote_model(hashes["logreg_small"], config=config, store=store, reason="approved")
    assert staged_challenger(store) is None
    history = rollout_history(store)
    assert history["state"].to_list() == ["promoted", "staged", "withdrawn", "staged"]
    assert history["reason"].to_list()[:2] == ["manual: approved", "manual: again"]
