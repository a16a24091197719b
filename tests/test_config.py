import pytest

from mllife import ConfigError, load_config

MINIMAL = """
[[candidates]]
name = "logreg"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
"""


def write(tmp_path, text):
    path = tmp_path / "mllife.toml"
    path.write_text(text)
    return path


def test_minimal_config_gets_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.split.train == 0.8 and config.split.validation == 0.1
    assert config.data_path == (tmp_path / "data" / "digits").resolve()
    assert config.store_path == (tmp_path / ".mllife" / "store.duckdb").resolve()
    # logreg already uses LogisticRegression, so only the majority baseline is added
    assert [c.name for c in config.models_to_train] == ["logreg", "baseline_majority"]


def test_repository_config_is_valid():
    from tests.conftest import REPO

    config = load_config(REPO / "mllife.toml")
    assert [c.name for c in config.models_to_train] == ["logreg", "cnn", "baseline_majority"]
    assert config.models_to_train[1].search.method == "random"


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[split]\ntrian = 0.8\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "split.trian" in message and str(path) in message and "unknown key" in message


def test_wrong_type_names_key_and_value(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[promotion]\nmin_accuracy = 'high'\n")
    with pytest.raises(ConfigError, match=r"promotion\.min_accuracy.*'high'"):
        load_config(path)


def test_ratios_must_sum_to_one(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[split]\ntrain = 0.7\n")
    with pytest.raises(ConfigError, match="must be 1"):
        load_config(path)


def test_duplicate_candidate_names(tmp_path):
    with pytest.raises(ConfigError, match="repeated: \\['logreg'\\]"):
        load_config(write(tmp_path, MINIMAL + MINIMAL))


def test_torch_candidate_needs_architecture(tmp_path):
    text = '[[candidates]]\nname = "net"\nkind = "torch"\n'
    with pytest.raises(ConfigError, match="needs 'architecture'"):
        load_config(write(tmp_path, text))


def test_no_candidates_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="candidates"):
        load_config(write(tmp_path, "[split]\nseed = 1\n"))


def test_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[[candidates]\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_baselines_can_be_chosen_or_turned_off(tmp_path):
    net = '[[candidates]]\nname = "net"\nkind = "torch"\narchitecture = "mlp"\n'
    config = load_config(write(tmp_path, net))
    assert [c.name for c in config.models_to_train] == [
        "net",
        "baseline_majority",
        "baseline_logreg",
    ]
    assert all(c.baseline for c in config.models_to_train[1:])
    config = load_config(write(tmp_path, net + "[training]\nbaselines = []\n"))
    assert [c.name for c in config.models_to_train] == ["net"]
    with pytest.raises(ConfigError, match="training.baselines"):
        load_config(write(tmp_path, net + "[training]\nbaselines = ['forest']\n"))


def test_a_batch_limit_past_what_a_prediction_id_can_number_is_refused(tmp_path):
    # a prediction id holds the input's position in 6 digits: /feedback would refuse
    # the ids of a bigger batch
    with pytest.raises(ConfigError, match="max_batch") as caught:
        load_config(write(tmp_path, MINIMAL + "\n[serving]\nmax_batch = 2000000\n"))
    assert "mllife.toml" in str(caught.value)
    assert load_config(write(tmp_path, MINIMAL + "\n[serving]\nmax_batch = 1000000\n"))


NAMES = """
[[candidates]]
name = "lr"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegresion"

[[candidates]]
name = "forest"
kind = "sklearn"
estimator = "sklearn.ensmble.RandomForestClassifier"

[[candidates]]
name = "cnn"
kind = "torch"
architecture = "resnet15"

[[candidates]]
name = "fine"
kind = "torch"
architecture = "efficientnet_b0"
"""


def test_every_model_name_is_checked_before_anything_runs_with_suggestions(tmp_path):
    """A misspelled estimator failed a minute into the run, once per trial, inside
    Dagster's stack traces: now the run refuses at once, naming each wrong name and the
    closest real ones, and writes nothing."""
    from assets.runtime.run import run_lifecycle

    (tmp_path / "mllife.toml").write_text(NAMES)
    with pytest.raises(ConfigError) as caught:
        run_lifecycle(tmp_path / "mllife.toml")
    message = str(caught.value)
    assert "candidates[0] ('lr').estimator: module 'sklearn.linear_model' has no" in message
    assert "did you mean 'LogisticRegression'" in message
    assert "no module 'sklearn.ensmble'" in message and "did you mean 'ensemble'" in message
    assert "candidates[2] ('cnn').architecture: unknown architecture 'resnet15'" in message
    assert "'fine'" not in message  # a real torchvision architecture passes
    assert not (tmp_path / ".mllife").exists()  # nothing written


def test_the_name_tables_match_the_libraries():
    import torchvision

    from mllife.models.names import BUILT_IN_ARCHITECTURES, torchvision_architectures
    from mllife.models.networks import BUILT_IN

    assert set(BUILT_IN_ARCHITECTURES) == set(BUILT_IN)
    classification = set(torchvision.models.list_models(module=torchvision.models))
    assert torchvision_architectures() == classification


def test_the_name_check_imports_neither_torch_nor_scikit_learn(tmp_path):
    import subprocess
    import sys

    (tmp_path / "mllife.toml").write_text(NAMES)
    code = (
        "import sys\n"
        "from mllife import load_config\n"
        "from mllife.models.names import check_model_names\n"
        f"config = load_config({str(tmp_path / 'mllife.toml')!r})\n"
        "try:\n"
        "    check_model_names(config.models_to_train)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'sklearn') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["ConfigError", "[]"], done.stderr
