import numpy as np
import pytest
from scipy import stats

from mllife import agreement, compare, evaluate, mcnemar_test


def test_compare_deltas_and_flipped_rows():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    champion = np.array([0, 1, 1, 0, 0, 2, 1, 1])
    challenger = np.array([0, 1, 2, 0, 1, 1, 0, 1])
    c = compare(y, champion, challenger, n_bootstrap=200)
    a, b = evaluate(y, champion, n_bootstrap=0), evaluate(y, challenger, n_bootstrap=0)
    assert c.deltas["accuracy"] == pytest.approx(b.accuracy - a.accuracy)
    assert c.deltas["macro_f1"] == pytest.approx(b.macro_f1 - a.macro_f1)
    assert c.wrong_to_right.tolist() == [2, 4, 6]
    assert c.right_to_wrong.tolist() == [5]
    low, high = c.intervals["accuracy"]
    assert low <= c.deltas["accuracy"] <= high


def test_paired_interval_is_narrower_than_unpaired_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 5000)
    champion = np.where(rng.random(5000) < 0.8, y, rng.integers(0, 5, 5000))
    challenger = champion.copy()
    flip = rng.random(5000) < 0.02
    challenger[flip] = y[flip]  # strictly better on 2% of rows
    c = compare(y, champion, challenger)
    low, high = c.intervals["accuracy"]
    assert 0 < low <= c.deltas["accuracy"] <= high
    assert c.mcnemar_exact and c.mcnemar_p_value == pytest.approx(2 * 0.5**13)  # 13 vs 0


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 9), (10, 14), (40, 60)])
def test_mcnemar_matches_scipy(b, c):
    statistic, p, exact = mcnemar_test(b, c)
    if b + c == 0:
        assert p == 1.0
    elif b + c < 25:
        assert exact and p == pytest.approx(stats.binomtest(min(b, c), b + c).pvalue)
    else:
        expected = stats.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), 1)
        assert not exact and p == pytest.approx(expected)


def test_compare_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="different lengths: 3 and 2"):
        compare([0, 1, 1], [0, 1, 1], [0, 1])


def test_agreement_verdicts():
    good = agreement(
        evaluate([0, 1, 1, 0], [0, 1, 1, 0]), evaluate([0, 1, 1, 0], [0, 1, 1, 1]), tolerance=0.3
    )
    assert good.passed and good.gap == pytest.approx(0.25)
    bad = agreement(evaluate([0, 1], [0, 1]), evaluate([0, 1], [1, 0]), tolerance=0.05)
    assert not bad.passed and "validation is higher" in bad.reason
    with pytest.raises(ValueError, match="unknown metric"):
        agreement(evaluate([0], [0]), evaluate([0], [0]), metric="auc")


def test_agreement_is_sample_size_aware():
    """One row of 18 is a gap of 0.056 > 0.05 that chance explains (the old rule refused
    every champion of a 178-row table); on 10,000 rows a 6-point gap is refused."""
    small = agreement(evaluate(["a"] * 17 + ["b"], ["a"] * 18), evaluate(["a"] * 18, ["a"] * 18),
                      tolerance=0.05)  # fmt: skip
    assert small.gap > 0.05 and small.passed and small.p_value == pytest.approx(0.31, abs=0.01)
    assert "chance explains that on 18 and 18 rows" in small.reason
    assert small.agrees(0.05) and small.agrees(0.0)  # any tolerance: chance explains it

    n = 10_000
    truth = np.ones(n)
    validation = evaluate(truth, np.r_[np.ones(9000), np.zeros(1000)])
    test = evaluate(truth, np.r_[np.ones(8400), np.zeros(1600)])
    large = agreement(validation, test, tolerance=0.05)
    assert not large.passed and large.p_value < 1e-20
    assert "not chance on 10000 and 10000 rows" in large.reason
    assert agreement(validation, test, tolerance=0.07).passed  # within the tolerance

    by_f1 = agreement(evaluate(["a"] * 17 + ["b"], ["a"] * 18), evaluate(["a"] * 18, ["a"] * 18),
                      tolerance=0.05, metric="macro_f1")  # fmt: skip
    assert by_f1.p_value is None and not by_f1.passed  # not a proportion: the gap alone
