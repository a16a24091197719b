import numpy as np
import pytest
import torch

from mllife import TrainingError
from mllife.config.project import CandidateConfig, SearchConfig
from mllife.models import build_model
from mllife.models.search import run_search, trial_params
from mllife.preprocess.images import ImagePreprocessor


def spec(**kwargs):
    base = {
        "name": "lr",
        "kind": "sklearn",
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 300},
    }
    return CandidateConfig(**{**base, **kwargs})


def test_grid_is_the_product_of_the_lists_over_fixed_params():
    s = spec(search=SearchConfig(space={"C": [0.1, 1.0], "tol": [1e-3, 1e-4]}))
    trials = trial_params(s)
    assert len(trials) == 4
    assert all(t["max_iter"] == 300 for t in trials)
    assert {(t["C"], t["tol"]) for t in trials} == {
        (0.1, 1e-3),
        (0.1, 1e-4),
        (1.0, 1e-3),
        (1.0, 1e-4),
    }


def test_random_search_is_seeded_and_respects_ranges():
    space = {"C": {"low": 0.001, "high": 10.0, "log": True}, "penalty": ["l2"]}
    a = trial_params(spec(search=SearchConfig(method="random", trials=20, seed=3, space=space)))
    b = trial_params(spec(search=SearchConfig(method="random", trials=20, seed=3, space=space)))
    assert a == b and len(a) == 20
    assert all(0.001 <= t["C"] <= 10.0 and t["penalty"] == "l2" for t in a)
    c = trial_params(spec(search=SearchConfig(method="random", trials=20, seed=4, space=space)))
    assert a != c


def test_grid_search_rejects_a_range():
    with pytest.raises(ValueError, match="grid search needs a list"):
        SearchConfig(space={"C": {"low": 0.1, "high": 1.0}})


@pytest.fixture(scope="module")
def data(digits_folder):
    files = sorted(digits_folder.rglob("*.png"))[::3]
    order = np.random.default_rng(0).permutation(len(files))  # mix classes before the cut
    files = [files[i] for i in order]
    y = np.array([int(f.parent.name) for f in files])
    pre = ImagePreprocessor(size=8)
    x = pre.fit_transform(files)
    cut = int(len(files) * 0.8)
    return pre, x[:cut], y[:cut], x[cut:], y[cut:]


def _run(candidate, data):
    pre, xt, yt, xv, yv = data
    classes = [str(i) for i in range(10)]
    logs = []

    def build(params):
        return build_model(
            candidate.model_copy(update={"params": params}), classes=classes, preprocessor=pre
        )

    result = run_search(
        candidate, build=build, x_train=xt, y_train=yt, x_val=xv, y_val=yv, log=logs.append
    )
    return result, logs


def test_search_keeps_the_best_trial_and_records_every_one(data):
    candidate = spec(search=SearchConfig(space={"C": [0.0001, 1.0]}))
    result, _ = _run(candidate, data)
    assert [t.status for t in result.trials] == ["ok", "ok"]
    assert result.best.params["C"] == 1.0
    assert result.best.score == max(t.score for t in result.trials)


def test_a_failing_trial_is_recorded_and_the_search_goes_on(data):
    candidate = spec(search=SearchConfig(space={"C": [1.0, -1.0]}))  # C must be > 0
    result, logs = _run(candidate, data)
    failed = [t for t in result.trials if t.status == "failed"]
    assert len(failed) == 1 and failed[0].params["C"] == -1.0
    assert "C" in failed[0].error
    assert result.best.params["C"] == 1.0
    assert any("FAILED" in line for line in logs)


def test_every_trial_failing_is_a_clear_error(data):
    candidate = spec(params={"not_a_param": 1}, search=SearchConfig(space={"C": [1.0, 2.0]}))
    with pytest.raises(TrainingError, match=r"every trial failed.*not_a_param"):
        _run(candidate, data)


def test_unknown_estimator_path_fails_every_trial_with_the_path(data):
    candidate = spec(estimator="sklearn.linear_model.NoSuchModel")
    with pytest.raises(TrainingError, match="NoSuchModel"):
        _run(candidate, data)


def test_diverging_torch_trial_is_recorded_as_failed(data):
    candidate = CandidateConfig(
        name="net",
        kind="torch",
        architecture="mlp",
        params={"epochs": 2},
        search=SearchConfig(space={"lr": [1e12, 1e-3]}),
    )
    result, _ = _run(candidate, data)
    statuses = {t.params["lr"]: t.status for t in result.trials}
    assert statuses == {1e12: "failed", 1e-3: "ok"}
    assert "loss became" in next(t.error for t in result.trials if t.status == "failed")


def test_a_never_finite_validation_loss_names_the_candidate_trial_and_epoch(data):
    """Validation inputs the network turns into NaN (the training ones are fine): a
    training error with the reason, not a TypeError from an empty best state."""
    pre, xt, yt, xv, yv = data
    broken = xv.clone()
    broken[0, 0, 0, 0] = float("nan")
    candidate = CandidateConfig(name="net", kind="torch", architecture="mlp",
                                params={"epochs": 2, "lr": 0.001})  # fmt: skip
    with pytest.raises(TrainingError) as failed:
        _run(candidate, (pre, xt, yt, broken, yv))
    said = str(failed.value)
    assert "candidate 'net': every trial failed: trial 0" in said
    assert "validation loss is nan at epoch 1" in said


def test_cross_validation_scores_sklearn_trials(data):
    candidate = spec(search=SearchConfig(space={"C": [0.1]}, cv=3))
    result, _ = _run(candidate, data)
    trial = result.trials[0]
    assert trial.score != trial.validation_score  # the CV mean picks, validation reports


def test_resnet18_builds_without_weights_and_trains(data):
    pre, xt, yt, xv, yv = data
    candidate = CandidateConfig(
        name="rn", kind="torch", architecture="resnet18", params={"epochs": 1, "batch_size": 128}
    )
    model = build_model(candidate, classes=[str(i) for i in range(10)], preprocessor=pre)
    model.fit(xt[:256], yt[:256], xv[:64], yv[:64], log=lambda _: None)
    proba = model.predict_proba_features(xv[:8])
    assert proba.shape == (8, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert sum(p.numel() for p in model.network.parameters()) > 10_000_000


def test_torch_training_is_reproducible_on_the_cpu(data):
    candidate = CandidateConfig(
        name="c", kind="torch", architecture="small_cnn", params={"epochs": 2, "seed": 7}
    )
    a, _ = _run(candidate, data)
    b, _ = _run(candidate, data)
    assert a.best.score == b.best.score
    for pa, pb in zip(a.model.network.parameters(), b.model.network.parameters(), strict=True):
        assert torch.equal(pa, pb)
