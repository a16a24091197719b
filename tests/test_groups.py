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
