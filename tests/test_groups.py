"""Quality per group (`[fairness] groups`): per-group accuracy with its interval and
recall per class, the largest gap with the interval of the difference, and a report
section that tells the client only a gap chance does not explain."""

from __future__ import annotations

import polars as pl
import pytest

from mllife import ConfigError
from mllife.config.project import load_config
from mllife.evaluation.groups import group_quality
from mllife.reporting.fairness_section import fairness_section


def _rows(n_a: int, right_a: int, n_b: int, right_b: int):
    labels = ["yes" if i % 2 else "no" for i in range(n_a + n_b)]
    predicted = [
        label if (i < right_a or n_a <= i < n_a + right_b) else ("no" if label == "yes" else "yes")
        for i, label in enumerate(labels)
    ]
    rows = pl.DataFrame({"label": labels, "sex": ["F"] * n_a + ["M"] * n_b})
    return rows, predicted


def test_a_gap_beyond_chance_is_measured_and_told_to_the_client():
    rows, predicted = _rows(300, 285, 300, 225)  # 95% vs 75%
    quality, gap = group_quality(rows["label"], predicted, rows["sex"])
    assert [(g.group, g.n) for g in quality] == [("F", 300), ("M", 300)]
    assert quality[0].accuracy == pytest.approx(0.95) and quality[0].low < 0.95 < quality[0].high
    assert set(quality[1].recall) == {"yes", "no"}
    assert (gap.better, gap.worse) == ("F", "M") and gap.gap == pytest.approx(0.20)
    assert gap.beyond_chance and gap.low > 0.1
    section = fairness_section(rows, predicted, ("sex",))
    assert section.client_lines[0].startswith("The model is less accurate for sex = M")
    assert "beyond chance" in " ".join(b.text for b in section.blocks if hasattr(b, "text"))
    assert section.next_steps and "sex = M" in section.next_steps[0]


def test_small_or_single_groups_claim_nothing():
    rows, predicted = _rows(30, 27, 30, 25)  # 90% vs 83%: chance explains it at 30 rows
    section = fairness_section(rows, predicted, ("sex",))
    texts = " ".join(b.text for b in section.blocks if hasattr(b, "text"))
    assert "chance may explain it" in texts and section.client_lines == []
    rows, predicted = _rows(6, 6, 5, 1)  # too few rows in each group
    texts = " ".join(b.text for b in fairness_section(rows, predicted, ("sex",)).blocks
                     if hasattr(b, "text"))  # fmt: skip
    assert "too few to compare groups" in texts
    one = rows.with_columns(pl.lit("F").alias("sex"))
    texts = " ".join(b.text for b in fairness_section(one, predicted, ("sex",)).blocks
                     if hasattr(b, "text"))  # fmt: skip
    assert "sex has one value on validation" in texts
    with pytest.raises(ValueError, match="one value per row"):
        group_quality(["a"], ["a", "b"], ["F"])


def test_fairness_settings_that_cannot_work_are_config_errors(tmp_path):
    base = '[[candidates]]\nname = "lr"\nkind = "sklearn"\nestimator = "a.B"\n'
    for text, message in [
        ('[fairness]\ngroups = ["sex"]\n', "fairness.groups names table columns"),
        ('[data]\nkind = "table"\npath = "t.csv"\n[fairness]\ngroups = ["target"]\n',
         "fairness.groups names the target column"),
    ]:  # fmt: skip
        (tmp_path / "mllife.toml").write_text(text + base)
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / "mllife.toml")


def test_the_group_gap_gate_refuses_only_a_gap_beyond_the_bar_and_chance():
    from mllife import agreement, decide, evaluate
    from mllife.config.project import PromotionConfig

    labels = ["no", "yes"] * 5
    report = evaluate(labels, labels, n_bootstrap=0)

    def gate(policy, gaps):
        decision = decide(
            policy=policy, challenger_hash="c", validation=report, test=report,
            agreement=agreement(report, report, tolerance=0.05), champion_hash=None,
            comparison=None, group_gaps=gaps,
        )  # fmt: skip
        return decision, decision.gate("group_gap")

    rows, predicted = _rows(300, 285, 300, 225)
    wide = group_quality(rows["label"], predicted, rows["sex"])[1]
    assert wide.low > 0.1
    rows, predicted = _rows(30, 27, 30, 25)
    close = group_quality(rows["label"], predicted, rows["sex"])[1]
    assert close.low <= 0.05 < close.gap  # a gap over the bar, but chance explains it

    decision, g = gate(PromotionConfig(max_group_gap=0.05), {"sex": wide})
    assert not decision.passed and not g.passed and g.threshold == 0.05
    assert "sex's gap exceeds 0.0500 beyond chance" in g.reason and "look at M's errors" in g.reason
    _, g = gate(PromotionConfig(max_group_gap=0.05), {"sex": close})
    assert g.passed and g.applies and "within the bar or within chance" in g.reason
    _, g = gate(PromotionConfig(max_group_gap=0.25), {"sex": wide})
    assert g.passed  # wider than chance, but within a bar the project chose
    # unset: measured and said, never refusing; no groups named: not applied
    decision, g = gate(PromotionConfig(), {"sex": wide})
    assert decision.passed and g.passed and not g.applies and "no max_group_gap set" in g.reason
    _, g = gate(PromotionConfig(max_group_gap=0.05), {})
    assert g.passed and not g.applies and "no [fairness] groups" in g.reason
    _, g = gate(PromotionConfig(max_group_gap=0.05), {"sex": None})
    assert g.passed and "two groups large enough" in g.reason


def test_the_challengers_gaps_are_read_on_the_gate_split():
    from types import SimpleNamespace

    from mllife.data.split import SplitSet
    from mllife.promotion.challenger import _group_gaps

    rows, predicted = _rows(300, 285, 300, 225)
    splits = SplitSet(
        rows=pl.concat([rows.with_columns(pl.lit("test").alias("split")),
                        rows.with_columns(pl.lit("validation").alias("split"))]),
        data_version="d", split_version="s",
    )  # fmt: skip
    best = SimpleNamespace(test_predictions=tuple(predicted),
                           validation_predictions=tuple(rows["label"]))  # fmt: skip

    def config(split, groups=("sex",)):
        policy = SimpleNamespace(gate_split=split)
        return SimpleNamespace(
            fairness=SimpleNamespace(groups=groups), promotion=policy, data=SimpleNamespace(pii=())
        )

    assert _group_gaps(best, splits, config("test"))["sex"].gap == pytest.approx(0.20)
    even = _group_gaps(best, splits, config("validation"))["sex"]  # every prediction right
    assert (even.better, even.worse, even.gap) == ("F", "M", 0.0)
    assert _group_gaps(best, splits, config("test", ())) == {}
    with pytest.raises(ConfigError, match="not columns of the table"):
        _group_gaps(best, splits, config("test", ("age",)))
