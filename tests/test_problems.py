import shutil

import pytest

from mllife import ProblemError
from mllife.config.project import load_config
from mllife.problems.defaults import write_digit_problems
from mllife.problems.registry import ProblemRegistry
from mllife.storage.store import Store
from tests.conftest import REPO, RecordedModels

CLASSES = [str(i) for i in range(10)]
CONFIG = (
    '[[candidates]]\nname = "lr"\nkind = "sklearn"\n'
    'estimator = "sklearn.linear_model.LogisticRegression"\n'
)


@pytest.fixture
def setup(tmp_path, digits_folder):
    (tmp_path / "mllife.toml").write_text(CONFIG)
    config = load_config(tmp_path / "mllife.toml")
    store = Store(config.store_path)
    registry = ProblemRegistry(config, store)
    new_model = RecordedModels(config, store, digits_folder).new

    return config, store, registry, digits_folder, new_model


def test_patterns_are_validated_and_copied_by_content(setup, tmp_path):
    config, store, registry, digits, _ = setup
    registry.add_problem("hats", description="biased toward hats", min_score=0.5)
    original = tmp_path / "pattern.png"
    shutil.copy(digits / "7" / "0007.png", original)
    digest = registry.add_pattern(
        "hats", input=original, expected="7", kind="positive", source="production", classes=CLASSES
    )
    original.unlink()  # the registry keeps its own copy
    kept = config.state_dir / registry.patterns("hats")["input_path"][0]
    assert kept.is_file() and kept.name.startswith(digest)
    with pytest.raises(ProblemError, match="already in 'hats'"):
        registry.add_pattern(
            "hats", input=kept, expected="7", kind="positive", source="production", classes=CLASSES
        )
    with pytest.raises(ProblemError, match="'12' is not a known class"):
        registry.add_pattern(
            "hats",
            input=digits / "1/0001.png",
            expected="12",
            kind="positive",
            source="production",
            classes=CLASSES,
        )
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(ProblemError, match="not a readable image"):
        registry.add_pattern(
            "hats", input=broken, expected="1", kind="negative", source="contrived", classes=CLASSES
        )
    with pytest.raises(ProblemError, match="kind must be one of"):
        registry.add_pattern(
            "hats",
            input=digits / "1/0001.png",
            expected="1",
            kind="maybe",
            source="contrived",
            classes=CLASSES,
        )
    with pytest.raises(ProblemError, match="no problem named 'caps'"):
        registry.patterns("caps")
    assert registry.patterns("hats").height == 1  # nothing half-written


def test_only_new_model_pattern_pairs_are_scored(setup):
    _, store, registry, digits, new_model = setup
    registry.add_problem("p", description="")
    for i, file in enumerate(sorted(digits.rglob("*.png"))[:5]):
        registry.add_pattern(
            "p",
            input=file,
            expected=file.parent.name,
            kind="positive" if i % 2 else "negative",
            source="contrived",
            classes=CLASSES,
        )
    first, second = new_model(0.1), new_model(1.0)
    assert registry.score([first, second]).new_pairs == 10
    assert registry.score([first, second]).new_pairs == 0  # all cached
    third = new_model(10.0)
    result = registry.score([first, second, third])
    assert result.new_pairs == 5 and result.models_scored == 1  # only the new version
    registry.add_problem("q", description="")
    registry.add_pattern(
        "q",
        input=sorted(digits.rglob("*.png"))[100],
        expected="0",
        kind="positive",
        source="contrived",
        classes=CLASSES,
    )
    assert registry.score([first, second, third]).new_pairs == 3  # one new pattern x 3
    history = registry.history()
    assert set(history["problem"]) == {"p", "q"} and history.height == 6
    assert history.filter(history["problem"] == "p")["patterns"].to_list() == [5, 5, 5]


def test_a_model_whose_artifact_is_gone_is_skipped_with_the_reason(setup):
    config, _, registry, digits, new_model = setup
    registry.add_problem("p", description="")
    registry.add_pattern(
        "p",
        input=digits / "1/0001.png",
        expected="1",
        kind="positive",
        source="contrived",
        classes=CLASSES,
    )
    ref = new_model(1.0)
    ref.path(config.artifacts_dir).unlink()
    result = registry.score([ref])
    assert result.new_pairs == 0 and "missing" in result.skipped[0][1]


def test_flips_between_versions_and_removal_rules(setup):
    _, store, registry, digits, new_model = setup
    registry.add_problem("p", description="")
    files = sorted(digits.rglob("*.png"))[::60]
    for file in files:
        registry.add_pattern(
            "p",
            input=file,
            expected=file.parent.name,
            kind="positive",
            source="contrived",
            classes=CLASSES,
        )
    weak, strong = new_model(0.0001), new_model(10.0)
    registry.score([weak, strong])
    flips = registry.flips("p", weak.model_hash[:10], strong.model_hash[:10])
    assert flips.height > 0 and set(flips["change"]) <= {"fixed", "broken"}
    with pytest.raises(ProblemError, match="pass --force"):
        registry.remove("p")
    assert registry.remove("p", force=True) == len(files)
    assert registry.problems().height == 0


def test_shipped_problems_have_10_to_15_patterns_and_regenerate_identically(tmp_path):
    names = write_digit_problems(tmp_path)
    for name in names:
        ours = sorted(p.name for p in (tmp_path / name).iterdir())
        shipped = sorted(p.name for p in (REPO / "problems" / name).iterdir())
        assert ours == shipped
        for file in ours:
            assert (tmp_path / name / file).read_bytes() == (
                REPO / "problems" / name / file
            ).read_bytes()
        assert 10 <= len(ours) - 1 <= 15  # pattern files besides problem.toml


def test_sync_from_files_is_idempotent(setup):
    _, _, registry, _, _ = setup
    first = registry.sync_from_files(REPO / "problems", classes=CLASSES)
    assert first == 41 and registry.sync_from_files(REPO / "problems", classes=CLASSES) == 0
    assert set(registry.problems()["name"]) == {
        "inverted_colours",
        "one_vs_seven",
        "rotated_strokes",
    }
