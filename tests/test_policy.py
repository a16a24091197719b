import re

import pytest

from mllife import ConfigError, agreement, compare, decide, evaluate
from mllife.config.project import PromotionConfig
from mllife.promotion.policy import gate_names

Y = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
CHAMPION = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]  # 8/10
CHALLENGER = [0, 0, 0, 0, 1, 1, 1, 1, 2, 1]  # 9/10


def run(policy: PromotionConfig, *, champion=True, **kwargs):
    val = evaluate(Y, CHALLENGER, n_bootstrap=0)
    test = evaluate(Y, CHALLENGER, n_bootstrap=0)
    args = {
        "policy": policy,
        "challenger_hash": "new",
        "validation": val,
        "test": test,
        "agreement": agreement(val, test, tolerance=policy.setting("max_val_test_gap")),
        "champion_hash": "old" if champion else None,
        "comparison": compare(Y, CHAMPION, CHALLENGER, n_bootstrap=0) if champion else None,
    }
    return decide(**{**args, **kwargs})


def test_every_gate_is_reported_with_observed_value_threshold_and_verdict():
    policy = PromotionConfig(thresholds={"accuracy": 0.85, "recall:2": 0.4, "log_loss": 9.9})
    with pytest.raises(ConfigError, match="needs probabilities"):
        run(policy)
    policy = PromotionConfig(thresholds={"accuracy": 0.85, "recall:2": 0.6})
    decision = run(policy)
    assert [g.name for g in decision.gates] == gate_names(policy)
    recall = decision.gate("threshold_recall_2")
    assert not recall.passed and recall.observed == 0.5 and recall.threshold == 0.6
    assert decision.gate("threshold_accuracy").passed
    assert not decision.passed and "recall:2 0.5000 < minimum 0.6000" in decision.summary()


def test_first_run_applies_only_absolute_gates_and_says_so():
    decision = run(PromotionConfig(min_accuracy=0.5), champion=False)
    assert decision.passed and decision.first_run
    gate = decision.gate("beats_champion")
    assert gate.passed and not gate.applies and "first run" in gate.reason
    assert decision.summary() == "promoted (first champion; only the absolute gates applied)"


def test_beats_champion_absolute_and_relative():
    point = {"evidence": "point"}  # the margins on the observed change alone
    assert run(PromotionConfig(min_improvement=0.04, **point)).gate("beats_champion").passed
    gate = run(PromotionConfig(min_improvement=0.2, **point)).gate("beats_champion")
    assert not gate.passed and gate.threshold == 0.2
    gate = run(PromotionConfig(min_relative_improvement=0.5, **point)).gate("beats_champion")
    assert not gate.passed  # +0.05 of macro F1 is less than half the champion's 0.80


def test_a_tie_does_not_replace_the_champion():
    val = evaluate(Y, CHAMPION, n_bootstrap=0)
    decision = decide(
        policy=PromotionConfig(),
        challenger_hash="new",
        validation=val,
        test=val,
        agreement=agreement(val, val),
        champion_hash="old",
        comparison=compare(Y, CHAMPION, CHAMPION, n_bootstrap=0),
    )
    gate = decision.gate("beats_champion")
    assert not gate.passed and "must improve on the champion" in gate.reason


def test_risk_level_decide_tightens_the_defaults():
    suggest, decide_ = PromotionConfig(risk="suggest"), PromotionConfig(risk="decide")
    assert decide_.setting("max_val_test_gap") < suggest.setting("max_val_test_gap")
    assert decide_.setting("max_p_value") == 0.05 and suggest.setting("max_p_value") is None
    gate = run(decide_).gate("significance")  # 1 fixed, 0 broken: p = 1.0
    assert gate.applies and not gate.passed
    assert not run(suggest).gate("significance").applies
    assert PromotionConfig(risk="decide", max_p_value=1.0).setting("max_p_value") == 1.0


def test_simpler_model_is_not_better():
    gate = run(
        PromotionConfig(simpler_margin=0.05), baseline_scores={"baseline_logreg": 0.88}
    ).gate("simpler_not_better")
    assert not gate.passed and "baseline_logreg" in gate.reason
    assert (
        run(PromotionConfig(), challenger_is_baseline=True, baseline_scores={"b": 1.0})
        .gate("simpler_not_better")
        .passed
    )


def test_size_and_latency_budgets():
    policy = PromotionConfig(max_artifact_mb=1.0, max_p95_latency_ms=5.0)
    decision = run(policy, artifact_bytes=3 * 2**20, latency_p95_ms=2.0)
    assert not decision.gate("artifact_size").passed
    assert decision.gate("latency").passed and decision.gate("latency").observed == 2.0
    unset = run(PromotionConfig(), artifact_bytes=3 * 2**20, latency_p95_ms=99.0)
    assert unset.gate("latency").passed and not unset.gate("latency").applies


def test_unknown_metric_or_class_is_a_config_error(tmp_path):
    from mllife import load_config

    base = (
        '[[candidates]]\nname = "lr"\nkind = "sklearn"\n'
        'estimator = "sklearn.linear_model.LogisticRegression"\n'
    )
    path = tmp_path / "mllife.toml"
    path.write_text(base + "[promotion]\nthresholds = { auc = 0.9 }\n")
    with pytest.raises(ConfigError, match=r"promotion\.thresholds.*unknown metric 'auc'"):
        load_config(path)
    path.write_text(base + "[promotion]\nthresholds = { acurracy = 0.9 }\n")
    with pytest.raises(ConfigError, match=r"unknown metric 'acurracy'; did you mean 'accuracy'"):
        load_config(path)
    path.write_text(
        '[data]\nclasses = ["a", "b"]\n' + base + "[promotion]\nthresholds = { 'recall:c' = 0.9 }\n"
    )
    with pytest.raises(ConfigError, match="class 'c'"):
        load_config(path)
    with pytest.raises(ConfigError, match="class '9' is not in the data"):
        run(PromotionConfig(thresholds={"recall:9": 0.5}))


def test_human_level_gate():
    policy = PromotionConfig(min_share_of_human=0.95)
    decision = run(policy, human_accuracy=0.92)  # model accuracy 0.9 = 97.8% of 0.92
    gate = decision.gate("human_level")
    assert gate.passed and gate.observed == pytest.approx(0.9 / 0.92)
    assert not run(policy, human_accuracy=1.0).gate("human_level").passed
    assert not run(PromotionConfig(), human_accuracy=0.92).gate("human_level").applies


def test_the_absolute_gates_read_the_split_the_policy_names():
    val = evaluate(Y, CHALLENGER, n_bootstrap=0)  # 9/10
    test = evaluate(Y, CHAMPION, n_bootstrap=0)  # 8/10
    on_test = run(PromotionConfig(min_accuracy=0.85), champion=False, validation=val, test=test)
    gate = on_test.gate("threshold_accuracy")
    assert not gate.passed and gate.split == "test" and gate.observed == 0.8
    assert gate.reason.startswith("test accuracy 0.8000 < minimum 0.8500")
    # on 10 rows the bar lies inside the interval: the reason says so and what would tell
    assert "but on 10 rows its 95% interval [0.4902, 0.9433] holds the bar" in gate.reason
    assert "a larger [split] test" in gate.reason
    on_val = run(
        PromotionConfig(min_accuracy=0.85, gate_split="validation"),
        champion=False, validation=val, test=test,
    )  # fmt: skip
    assert on_val.gate("threshold_accuracy").passed
    assert on_val.gate("threshold_accuracy").split == "validation"
    with_baseline = run(PromotionConfig(), validation=val, test=test, baseline_scores={"b": 0.5})
    assert with_baseline.gate("simpler_not_better").split == "validation"  # a selection
    assert with_baseline.gate("beats_champion").split == "test"
    with pytest.raises(ValueError, match="needs the challenger's test report"):
        run(PromotionConfig(), test=None)


def test_the_simpler_model_gate_fails_a_barely_better_challenger_and_says_when_it_cannot_fail():
    """The challenger is chosen over the baselines on the same validation score, so at the
    default margin of 0 the gate could never fail: it says it is not informative. With a
    margin, a challenger that leads the best baseline by less fails it."""
    probe = run(PromotionConfig(), baseline_scores={"baseline_majority": 0.0})
    ours = probe.gate("simpler_not_better").observed  # the challenger's lead over 0.0
    baselines = {"baseline_majority": 0.3, "baseline_logreg": ours - 0.01}
    default = run(PromotionConfig(), baseline_scores=baselines).gate("simpler_not_better")
    assert default.passed and not default.applies
    assert "not informative at simpler_margin = 0" in default.reason
    assert "leads baseline_logreg by +0.0100" in default.reason
    strict = run(PromotionConfig(simpler_margin=0.02), baseline_scores=baselines)
    gate = strict.gate("simpler_not_better")
    assert not gate.passed and gate.applies and not strict.passed
    assert "margin +0.0100 < 0.0200" in gate.reason


def _paired_predictions(n: int, fixed: int, broken: int, both_wrong: int = 10):
    """Three classes on ``n`` rows; the champion wrong on ``fixed`` rows the challenger
    gets right, the challenger wrong on ``broken`` rows the champion gets right."""
    y = [i % 3 for i in range(n)]
    champion, challenger = list(y), list(y)
    for i in range(fixed):
        champion[i] = (y[i] + 1) % 3
    for i in range(fixed, fixed + broken):
        challenger[i] = (y[i] + 1) % 3
    for i in range(n - both_wrong, n):
        champion[i] = challenger[i] = (y[i] + 2) % 3
    return y, champion, challenger


def _decide_on(y, champion, challenger, policy):
    val = evaluate(y, challenger, n_bootstrap=0)
    return decide(
        policy=policy,
        challenger_hash="new",
        validation=val,
        test=val,
        agreement=agreement(val, val),
        champion_hash="old",
        comparison=compare(y, champion, challenger),
    )


def test_a_difference_chance_explains_is_not_promoted_by_default():
    # the reproduction: 180 test rows, 3 fixed and 2 broken: +0.0056, McNemar p=1
    y, champion, challenger = _paired_predictions(180, fixed=3, broken=2)
    decision = _decide_on(y, champion, challenger, PromotionConfig(selection_metric="accuracy"))
    gate = decision.gate("beats_champion")
    assert not decision.passed and not gate.passed and gate.observed == pytest.approx(1 / 180)
    assert "better by 0.56 points, but that could be chance" in gate.reason
    assert "5 of 180 rows differ: 3 fixed, 2 broken" in gate.reason
    assert "collect more labelled data" in gate.reason and "evidence" in gate.reason
    # the rows at which a change this size is told from chance, by the interval's width
    needed = int(re.search(r"needs about (\d+) rows of the 180", gate.reason)[1])
    assert 1000 < needed < 10_000, gate.reason
    # the old rule, on request: any observed gain
    point = PromotionConfig(selection_metric="accuracy", evidence="point")
    assert _decide_on(y, champion, challenger, point).passed


def test_a_clear_improvement_is_promoted_and_the_margin_moves_the_bar():
    y, champion, challenger = _paired_predictions(400, fixed=30, broken=2)
    decision = _decide_on(y, champion, challenger, PromotionConfig(selection_metric="accuracy"))
    gate = decision.gate("beats_champion")
    assert decision.passed and "beyond chance" in gate.reason, gate.reason
    # the same gain must clear a 5-point margin with its lower bound: it does not
    strict = PromotionConfig(selection_metric="accuracy", min_improvement=0.05)
    assert not _decide_on(y, champion, challenger, strict).gate("beats_champion").passed
    # a negative margin is non-inferiority: a slightly worse model within it passes
    y, champion, challenger = _paired_predictions(400, fixed=2, broken=3)
    loose = PromotionConfig(
        selection_metric="accuracy", min_improvement=-0.03, min_relative_improvement=-1
    )
    assert _decide_on(y, champion, challenger, loose).gate("beats_champion").passed


def test_without_an_interval_mcnemar_decides():
    y, champion, challenger = _paired_predictions(180, fixed=3, broken=2)
    val = evaluate(y, challenger, n_bootstrap=0)
    no_interval = compare(y, champion, challenger, n_bootstrap=0)
    decision = decide(
        policy=PromotionConfig(selection_metric="accuracy"), challenger_hash="new",
        validation=val, test=val, agreement=agreement(val, val), champion_hash="old",
        comparison=no_interval,
    )  # fmt: skip
    gate = decision.gate("beats_champion")
    assert not gate.passed and "McNemar p=1" in gate.reason


@pytest.mark.parametrize(
    ("key", "value"),
    [("min_improvement", 1.5), ("simpler_margin", -0.1), ("max_val_test_gap", 2),
     ("evidence", "maybe")],
)  # fmt: skip
def test_a_policy_value_out_of_range_is_a_config_error_naming_the_key(tmp_path, key, value):
    from mllife import load_config

    path = tmp_path / "mllife.toml"
    rendered = f'"{value}"' if isinstance(value, str) else value
    path.write_text(
        '[[candidates]]\nname = "lr"\nkind = "sklearn"\n'
        'estimator = "sklearn.linear_model.LogisticRegression"\n'
        f"[promotion]\n{key} = {rendered}\n"
    )
    with pytest.raises(ConfigError, match=rf"promotion\.{key}"):
        load_config(path)


def test_the_report_says_why_a_tie_went_to_the_smaller_model():
    from types import SimpleNamespace

    from mllife.reporting.status import _tie_note

    tied = SimpleNamespace(
        ranking=(("baseline_logreg", 0.9779), ("cnn", 0.9779), ("mlp", 0.95)),
        evidence={"basis": {"selection_metric": "macro_f1"}},
    )
    (note,) = _tie_note(tied)
    assert note.text.startswith("baseline_logreg ties with cnn on validation macro_f1 (0.9779)")
    assert "smaller artifact" in note.text
    assert _tie_note(SimpleNamespace(ranking=(("a", 0.9), ("b", 0.8)), evidence={})) == ()
