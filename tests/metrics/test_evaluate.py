"""Every metric against scikit-learn on random inputs, edge cases included."""

import warnings

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mllife import evaluate

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def label_pairs(draw, *, weighted=False, strings=False):
    k = draw(st.integers(1, 6))
    n = draw(st.integers(1, 60))
    y_true = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    mode = draw(st.sampled_from(["random", "all_wrong", "perfect", "never_predicts_0"]))
    if mode == "random":
        y_pred = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    elif mode == "all_wrong":
        y_pred = (y_true + 1) % max(k, 2)
    elif mode == "perfect":
        y_pred = y_true.copy()
    else:
        y_pred = np.where(y_true == 0, 1, y_true)
    weight = None
    if weighted:
        weight = np.array(draw(st.lists(st.floats(0.1, 5.0), min_size=n, max_size=n)))
    if strings:
        names = np.array(["ant", "bee", "cat", "dog", "eel", "fox", "gnu"])
        y_true, y_pred = names[y_true], names[y_pred]
    return y_true, y_pred, weight


def _sk(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _check_against_sklearn(y_true, y_pred, weight):
    report = evaluate(y_true, y_pred, sample_weight=weight, n_bootstrap=0)
    labels = np.array(report.labels)
    kw = {"sample_weight": weight}
    np.testing.assert_allclose(
        report.confusion, skm.confusion_matrix(y_true, y_pred, labels=labels, **kw)
    )
    assert report.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred, **kw))
    assert report.balanced_accuracy == pytest.approx(
        _sk(skm.balanced_accuracy_score, y_true, y_pred, **kw)
    )
    for average in ("macro", "weighted"):
        p, r, f, _ = _sk(
            skm.precision_recall_fscore_support,
            y_true,
            y_pred,
            labels=labels,
            average=average,
            **kw,
        )
        assert report[f"{average}_precision"] == pytest.approx(p)
        assert report[f"{average}_recall"] == pytest.approx(r)
        assert report[f"{average}_f1"] == pytest.approx(f)
    p, r, f, s = _sk(skm.precision_recall_fscore_support, y_true, y_pred, labels=labels, **kw)
    np.testing.assert_allclose([c.precision for c in report.per_class], p)
    np.testing.assert_allclose([c.recall for c in report.per_class], r)
    np.testing.assert_allclose([c.f1 for c in report.per_class], f)
    np.testing.assert_allclose([c.support for c in report.per_class], s)


@SETTINGS
@given(label_pairs())
def test_count_metrics_match_sklearn(pair):
    _check_against_sklearn(*pair)


@SETTINGS
@given(label_pairs(weighted=True))
def test_weighted_metrics_match_sklearn(pair):
    _check_against_sklearn(*pair)


@SETTINGS
@given(label_pairs(strings=True))
def test_string_labels_match_sklearn(pair):
    _check_against_sklearn(*pair)


@st.composite
def scored(draw):
    k = draw(st.integers(2, 5))
    n = draw(st.integers(2 * k, 80))
    y_true = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    y_true[:k] = np.arange(k)  # every class present (sklearn's AUC requires it)
    # Coarse values make ties common, which is where AUC implementations differ.
    raw = (
        np.array(
            draw(st.lists(st.integers(0, 6), min_size=n * k, max_size=n * k)), dtype=float
        ).reshape(n, k)
        + 0.5
    )
    proba = raw / raw.sum(axis=1, keepdims=True)
    weighted = draw(st.booleans())
    weight = (
        np.array(draw(st.lists(st.floats(0.1, 3.0), min_size=n, max_size=n)))
        if (weighted)
        else None
    )
    return y_true, proba, weight


@SETTINGS
@given(scored())
def test_probabilistic_metrics_match_sklearn(case):
    y_true, proba, weight = case
    k = proba.shape[1]
    labels = np.arange(k)
    report = evaluate(
        y_true,
        proba.argmax(axis=1),
        proba=proba,
        labels=labels,
        sample_weight=weight,
        n_bootstrap=0,
    )
    kw = {"sample_weight": weight}
    if k == 2:
        expected_auc = skm.roc_auc_score(y_true, proba[:, 1], **kw)
    else:
        expected_auc = skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels, **kw)
    assert report["roc_auc"] == pytest.approx(expected_auc)
    assert report["log_loss"] == pytest.approx(skm.log_loss(y_true, proba, labels=labels, **kw))
    assert report["brier_score"] == pytest.approx(
        skm.brier_score_loss(y_true, proba if k > 2 else proba[:, 1], labels=labels, **kw)
        if k > 2
        else skm.brier_score_loss(y_true, proba[:, 1], **kw)
    )
    for top in (2, 3):
        if top < k:
            assert report[f"top_{top}_accuracy"] == pytest.approx(
                skm.top_k_accuracy_score(y_true, proba, k=top, labels=labels, **kw)
            )


def test_expected_calibration_error_by_hand():
    y_true = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
    report = evaluate(y_true, proba.argmax(1), proba=proba, n_bootstrap=0)
    # bins (15 equal): 0.9 -> right; 0.6 -> right; 0.7 -> right; 0.55 -> wrong
    expected = (abs(1 - 0.9) + abs(1 - 0.6) + abs(1 - 0.7) + abs(0 - 0.55)) / 4
    assert report["expected_calibration_error"] == pytest.approx(expected)


@pytest.mark.parametrize(
    "convert",
    [list, np.asarray, pl.Series, torch.tensor],
    ids=["list", "numpy", "polars", "torch"],
)
def test_input_types(convert):
    report = evaluate(convert([0, 1, 2, 2]), convert([0, 2, 2, 2]), n_bootstrap=0)
    assert report.accuracy == 0.75 and report.labels == (0, 1, 2)


def test_class_bias_names_the_asymmetric_pair():
    y_true = ["a"] * 100 + ["b"] * 100
    y_pred = ["a"] * 99 + ["b"] + ["a"] * 12 + ["b"] * 88
    report = evaluate(y_true, y_pred, n_bootstrap=0)
    pair = report.asymmetric_pairs[0]
    assert pair.sentence() == "b is predicted as a in 12% of cases, a as b in 1%"
    bias = {b.label: b for b in report.class_bias}
    assert bias["b"].destinations == (("a", 0.12),)


def test_bootstrap_intervals_are_seeded_and_cover_the_estimate():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 2000)
    p = np.where(rng.random(2000) < 0.7, y, rng.integers(0, 4, 2000))
    a = evaluate(y, p, random_state=7)
    b = evaluate(y, p, random_state=7)
    assert a.intervals == b.intervals
    low, high = a.intervals["accuracy"]
    assert low < a.accuracy < high and high - low < 0.06
    low, high = a.intervals["macro_f1"]
    assert low < a.macro_f1 < high


def test_report_is_immutable_and_serialises():
    report = evaluate([0, 1, 1], [0, 1, 0], proba=[[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    with pytest.raises(TypeError):
        report.metrics["accuracy"] = 1.0
    with pytest.raises(ValueError):
        report.confusion[0, 0] = 5
    as_dict = report.to_dict()
    assert as_dict["metrics"]["accuracy"] == pytest.approx(2 / 3)
    assert "| accuracy |" in report.to_markdown()
    assert report.plot_confusion().startswith(b"\x89PNG")
    assert report.summary().startswith("n=3 accuracy=0.667")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y_true": [0, 1], "y_pred": [0]}, "different lengths: 2 and 1"),
        ({"y_true": [], "y_pred": []}, "empty"),
        (
            {"y_true": [0, 1, 5], "y_pred": [0, 1, 1], "labels": [0, 1]},
            r"y_true\[2\] = 5 is not among labels=\[0, 1\]",
        ),
        (
            {"y_true": [0, 1], "y_pred": [0, 1], "proba": [[0.5, 0.5], [np.nan, 0.5]]},
            r"proba\[1, 0\] = nan",
        ),
        (
            {"y_true": [0, 1], "y_pred": [0, 1], "proba": [[0.5, 0.5], [0.2, 0.2]]},
            "row 1 of proba sums to 0.4",
        ),
        (
            {"y_true": [0, 1], "y_pred": [0, 1], "proba": [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]]},
            r"shape \(2, 3\); expected \(2, 2\)",
        ),
        ({"y_true": [0.5, 1], "y_pred": [0, 1]}, r"y_true\[0\] = .*0\.5"),
        (
            {"y_true": [0, 1], "y_pred": [0, 1], "sample_weight": [1, -1]},
            r"sample_weight\[1\] = -1",
        ),
    ],
)
def test_bad_input_names_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate(**kwargs)


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "rounded"])
def test_large_input_auc_path_matches_sklearn(ties):
    # >= 50k rows take the polars-sort path; rounding creates many ties.
    rng = np.random.default_rng(5)
    n, k = 60_000, 4
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:
        proba = np.round(proba, 2)
        proba /= proba.sum(axis=1, keepdims=True)
    report = evaluate(y, proba.argmax(1), proba=proba, n_bootstrap=0)
    expected = skm.roc_auc_score(y, proba, multi_class="ovr")
    assert report["roc_auc"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_auc_on_narrow_floats_and_negative_zero(dtype):
    rng = np.random.default_rng(2)
    n = 60_000
    y = rng.integers(0, 2, n)
    p1 = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1)
    p1[:50] = 0.0
    proba = np.column_stack([1 - p1, p1]).astype(dtype)
    proba[:50, 1] = -0.0  # the same value as 0.0 for every comparison
    report = evaluate(y, proba.argmax(1), proba=proba, n_bootstrap=0)
    as64 = proba.astype(np.float64)
    assert report["roc_auc"] == pytest.approx(skm.roc_auc_score(y, as64[:, 1]), abs=1e-12)


def test_poisson_bootstrap_for_large_samples_matches_the_multinomial():
    from mllife.metrics._bootstrap import POISSON_FROM

    rng = np.random.default_rng(3)
    n = POISSON_FROM * 2
    y = rng.integers(0, 5, n)
    p = np.where(rng.random(n) < 0.8, y, rng.integers(0, 5, n))
    large = evaluate(y, p, random_state=1).intervals["accuracy"]
    # at this n the normal-theory interval is the reference the bootstrap must match
    acc = (y == p).mean()
    half = 1.96 * np.sqrt(acc * (1 - acc) / n)
    assert large[0] == pytest.approx(acc - half, abs=half * 0.15)
    assert large[1] == pytest.approx(acc + half, abs=half * 0.15)


def test_small_perfect_sets_get_wilson_intervals_not_a_collapsed_bootstrap():
    # 57 of 57 right (the breast-cancer test split): the percentile bootstrap said
    # [1.000, 1.000]; Wilson's score interval says [0.937, 1.000].
    report = evaluate([0] * 30 + [1] * 27, [0] * 30 + [1] * 27)
    low, high = report.intervals["accuracy"]
    assert (round(low, 3), high) == (0.937, 1.0)
    assert report.interval_notes["accuracy"] == "wilson"
    # macro F1 is not a proportion: bootstrapped only where that is valid
    assert "macro_f1" not in report.intervals
    assert report.interval_notes["macro_f1"].startswith("not estimated: 0 wrong answers")
    assert "(no interval: 0 wrong answers" in report.summary()
    # per-class rates: Wilson on the class's own counts (30 of 30: [0.886, 1])
    first = report.per_class[0]
    assert round(first.recall_interval[0], 3) == 0.886 and first.recall_interval[1] == 1.0


def test_wilson_matches_its_formula_and_weights_use_the_effective_size():
    from statistics import NormalDist

    y = np.array([0, 1] * 50)
    p = y.copy()
    p[:20] = 1 - p[:20]  # 80 of 100 right
    z = NormalDist().inv_cdf(0.975)
    n, q = 100, 0.8
    centre = (q + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(q * (1 - q) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = evaluate(y, p).intervals["accuracy"]
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-12)
    # doubling every weight changes nothing; uneven weights shrink the effective n
    assert evaluate(y, p, sample_weight=np.full(100, 2.0)).intervals["accuracy"] == (
        pytest.approx((low, high), abs=1e-12)
    )
    uneven = np.where(np.arange(100) < 10, 10.0, 1.0)
    wide = evaluate(y, p, sample_weight=uneven).intervals["accuracy"]
    assert wide[1] - wide[0] > high - low


def test_large_label_vectors_are_evaluated_without_torch_or_polars():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, mllife\n"
        "y = np.arange(3_000_000) % 10\n"
        "p = np.where(np.arange(3_000_000) % 7 == 0, (y + 1) % 10, y)\n"
        "r = mllife.evaluate(y, p)\n"
        "assert abs(r.accuracy - float((y == p).mean())) < 1e-12\n"
        "print(sorted(m for m in ('torch', 'polars') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # neither is imported on the way


@pytest.mark.parametrize(
    "case", ["grows", "negative", "too_large", "narrow_dtypes", "huge_unsigned", "top_unused"]
)
def test_the_fused_dense_confusion_matches_scikit_learn(case):
    from mllife.metrics._classification import DENSE_CHUNK as CHUNK

    rng = np.random.default_rng(5)
    n = CHUNK * 3 + 17  # several chunks and a ragged end
    y = rng.integers(0, 5, n)
    p = np.where(rng.random(n) < 0.7, y, rng.integers(0, 5, n))
    if case == "grows":
        y[-3:] = [40, 300, 7]  # a larger label only in the last chunk
    elif case == "negative":
        y[CHUNK + 1] = -2
    elif case == "too_large":
        p[CHUNK * 2] = 5000
    elif case == "narrow_dtypes":
        y, p = y.astype(np.uint8), p.astype(np.int16)
    elif case == "huge_unsigned":  # wraps negative as int64: the general path takes it
        y, p = y.astype(np.uint64), p.astype(np.uint64)
        y[5] = 2**63 + 3
    elif case == "top_unused":  # 9 and 6 OR to 15: the matrix still ends at 9
        y[:2], p[:2] = [9, 6], [6, 9]
    report = evaluate(y, p, n_bootstrap=0)
    labels = np.union1d(y, p)
    assert list(report.labels) == labels.tolist()
    expected = skm.confusion_matrix(y, p, labels=labels)
    assert np.array_equal(report.confusion, expected)
