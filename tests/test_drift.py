import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mllife.monitoring.drift import drift
from mllife.monitoring.images import image_statistics


def frames(n, *, shift=0.0, seed=0, cat_p=(0.2, 0.3, 0.5)):
    rng = np.random.default_rng(seed)
    ref = pl.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.exponential(size=n),
            "c": rng.choice(["a", "b", "c"], n, p=[0.2, 0.3, 0.5]),
        }
    )
    cur = pl.DataFrame(
        {
            "x": rng.normal(shift, 1, size=n),
            "y": rng.exponential(size=n),
            "c": rng.choice(["a", "b", "c"], n, p=list(cat_p)),
        }
    )
    return ref, cur


def test_statistics_match_scipy():
    ref, cur = frames(2000, shift=0.3)
    report = drift(ref, cur)
    x = next(c for c in report.columns if c.column == "x")
    expected = stats.ks_2samp(ref["x"].to_numpy(), cur["x"].to_numpy())
    assert x.statistic == pytest.approx(expected.statistic)
    assert x.p_value == pytest.approx(expected.pvalue, rel=1e-3)
    assert x.effect == pytest.approx(
        stats.wasserstein_distance(ref["x"], cur["x"]) / ref["x"].std(ddof=0), rel=1e-9
    )
    c = next(c for c in report.columns if c.column == "c")
    counts = np.array(
        [[(ref["c"] == v).sum() for v in "abc"], [(cur["c"] == v).sum() for v in "abc"]]
    )
    assert c.p_value == pytest.approx(stats.chi2_contingency(counts, correction=False)[1])


def test_detects_a_fifth_of_a_standard_deviation_at_100k_rows():
    report = drift(*frames(100_000, shift=0.2))
    assert report.drifted_columns == ["x"]


def test_categorical_shift_is_detected():
    report = drift(*frames(20_000, cat_p=(0.5, 0.3, 0.2)))
    assert report.drifted_columns == ["c"]


def test_no_false_alarms_on_identical_distributions():
    alarms = sum(bool(drift(*frames(20_000, seed=s)).drifted_columns) for s in range(20))
    assert alarms == 0  # large n, tiny differences: significant maybe, never big enough


def test_small_samples_are_noted_not_compared():
    ref, cur = frames(10)
    report = drift(ref, cur)
    assert report.columns == () and len(report.notes) == 3
    with pytest.raises(ValueError, match=r"\['z'\] are not in both frames"):
        drift(ref, cur, columns=["z"])


def test_image_statistics(digits_folder):
    files = sorted(digits_folder.rglob("*.png"))[:50]
    stats_frame = image_statistics([f.read_bytes() for f in files])
    assert stats_frame.columns == ["brightness", "contrast", "width", "height"]
    assert stats_frame["width"].unique().to_list() == [8]
    inverted = image_statistics([f.read_bytes() for f in files])
    assert drift(stats_frame, inverted, min_rows=10).drifted_columns == []


def _samples(size):
    values = st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5]),  # ties, and -0.0 == 0.0
        st.integers(-3, 3).map(float),
    )
    return st.lists(values, min_size=size, max_size=400)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(a=_samples(30), b=_samples(30))
def test_ks_and_wasserstein_are_exact_on_ties_zeros_and_any_scale(a, b):
    """The integer-key sort and the single-search KS give scipy's values exactly."""
    report = drift(pl.DataFrame({"x": a}), pl.DataFrame({"x": b}), min_rows=30)
    (column,) = report.columns
    if column.kind != "numeric":  # few distinct integers are compared as categories
        return
    assert column.statistic == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    spread = float(np.std(a)) or 1.0
    expected = stats.wasserstein_distance(a, b) / spread
    assert column.effect == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("shape", ["continuous", "few_values", "rounded", "disjoint"])
def test_the_bounded_ks_search_of_large_samples_is_exact(shape):
    """Past 1,024 values the KS statistic searches only the buckets that can hold the
    supremum: scipy's value exactly, with ties, rounding and separated samples."""
    from mllife.monitoring._statistics import _ks_full, _ks_statistic, sorted_keys

    rng = np.random.default_rng(len(shape))
    for _ in range(10):
        n, m = (int(x) for x in rng.integers(1_100, 40_000, 2))
        if shape == "continuous":
            a, b = rng.normal(size=n), rng.normal(0.03, 1, m)
        elif shape == "few_values":
            a, b = rng.integers(0, 30, n) * 1.0, rng.integers(0, 31, m) * 1.0
        elif shape == "rounded":
            a, b = np.round(rng.normal(size=n), 2), np.round(rng.normal(size=m), 2)
        else:
            a, b = rng.normal(size=n), rng.normal(50, 1, m)
        keys_a, _ = sorted_keys(pl.Series(a))
        keys_b, _ = sorted_keys(pl.Series(b))
        statistic = _ks_statistic(keys_a, keys_b)
        assert statistic == _ks_full(keys_a, keys_b)
        assert statistic == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_a_column_going_missing_drifts_even_when_its_present_values_do_not():
    """A nullable column from 0% to 60% missing in serving, its other values alike: the
    missing-share test (corrected with the rest) makes it drift; the same share on both
    sides does not."""
    rng = np.random.default_rng(0)
    n = 2000
    reference = pl.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n),
                              "z": rng.normal(size=n)})  # fmt: skip
    values = rng.normal(size=n)
    current = pl.DataFrame({
        "x": pl.Series(values).scatter(np.arange(int(0.6 * n)), None),
        "y": rng.normal(size=n), "z": rng.normal(size=n),
    })  # fmt: skip
    report = drift(reference, current)
    assert report.drifted_columns == ["x"] and report.dataset_drift
    (missing,) = [c for c in report.columns if c.kind == "missing"]
    assert missing.column == "x" and missing.effect == pytest.approx(0.6)
    assert missing.p_adjusted < 1e-10 and missing.psi > 1
    assert "1 of 3 columns drifted (x)" in report.summary()
    same = reference.with_columns(reference["x"].scatter(np.arange(100), None))
    alike = current.with_columns(pl.Series("x", rng.normal(size=n)).scatter(np.arange(100), None))
    assert not drift(same, alike).drifted_columns  # 5% missing on both sides
