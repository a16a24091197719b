"""`mllife init`: a project of one's own from an image folder or a table, outside this
repository, followed by a first `mllife run` that deploys a champion; bad input leaves
nothing behind; a dirty first CSV is reported, not frozen."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from mllife import DataError
from mllife.cli import main as cli
from mllife.config.project import load_config
from mllife.data.defaults import write_breast_cancer, write_digits
from mllife.data.stage import raw_contract, read_raw, settle_contract
from mllife.scaffold import init_project
from mllife.storage.store import Store

REPO = Path(__file__).resolve().parents[1]


def _mllife(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed command, run as a user would, from the project folder."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("MLLIFE_CONFIG", None)
    return subprocess.run(
        [str(Path(sys.executable).parent / "mllife"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory) -> Path:
    """Three digit classes, 40 images each, as a user's image folder."""
    everything = tmp_path_factory.mktemp("all_digits") / "digits"
    write_digits(everything)
    folder = tmp_path_factory.mktemp("my_images") / "digits"
    for label in ("0", "1", "7"):
        (folder / label).mkdir(parents=True)
        for file in sorted((everything / label).iterdir())[:40]:
            shutil.copy(file, folder / label / file.name)
    return folder


@pytest.fixture(scope="module")
def cancer_csv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("my_table")
    write_breast_cancer(folder / "bc.parquet")
    pl.read_parquet(folder / "bc.parquet").write_csv(folder / "cancer.csv")
    return folder / "cancer.csv"


def _champion(root: Path):
    return Store(load_config(root / "mllife.toml").store_path).champion()


def test_init_on_an_image_folder_then_run_deploys_a_champion(tmp_path, digits_folder):
    root = tmp_path / "photos_project"
    done = _mllife("init", str(root), "--images", str(digits_folder), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "120 images in 3 classes: 0 40, 1 40, 7 40" in done.stdout
    assert "what next" in done.stdout and "mllife run" in done.stdout
    config = load_config(root / "mllife.toml")
    assert config.data.kind == "images" and config.data.classes == ("0", "1", "7")
    assert config.data.channels == 1 and config.data.image_size == 8
    assert [c.name for c in config.configured_candidates] == ["cnn"]
    assert (root / "data.dvc").is_file() and (root / ".dvc").is_dir() and (root / ".git").is_dir()
    assert (root / "problems" / "README.md").is_file()
    assert "assets.definitions" in (root / "workspace.yaml").read_text()
    assert not REPO.is_relative_to(root) and not root.is_relative_to(REPO)

    run = _mllife("run", cwd=root)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    champion = _champion(root)
    assert champion is not None and champion.name in ("cnn", "baseline_logreg")


def test_init_on_a_csv_then_run_deploys_a_champion(tmp_path, cancer_csv):
    root = tmp_path / "cancer"
    done = _mllife("init", str(root), "--table", str(cancer_csv), "--target", "target",
                   "--id", "id", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "569 rows; target 'target': benign 357, malignant 212" in done.stdout
    config = load_config(root / "mllife.toml")
    assert config.data.path == "data/cancer.csv" and config.data.id == "id"
    names = [c.name for c in config.configured_candidates]
    assert names == ["logreg", "boosting"]
    assert not config.schema_path.exists()  # frozen by the first passing run, not by init

    run = _mllife("run", cwd=root)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert _champion(root) is not None
    # the console: a line per step and each trial, no Dagster log lines (timestamps, run
    # ids); those are in the run's log file, named at the end
    assert "[1/" in run.stderr and " - dagster - " not in run.stderr + run.stdout
    assert re.search(r"^  logreg: trial 1/\d+ ", run.stderr, re.MULTILINE), run.stderr[-2000:]
    log = Path(re.search(r"^log: (.+)$", run.stdout, re.MULTILINE)[1])
    text = log.read_text()
    assert "STEP_SUCCESS" in text or "Finished execution of step" in text
    assert "logreg: trial 1/" in text
    frozen = json.loads(config.schema_path.read_text())["columns"]
    assert frozen["mean_radius"]["dtype"] == "float" and len(frozen) == 30


def test_init_refuses_an_existing_project(tmp_path, cancer_csv):
    root = tmp_path / "p"
    init_project(root, table=cancer_csv, target="target")
    before = (root / "mllife.toml").read_bytes()
    with pytest.raises(Exception, match="already holds a project"):
        init_project(root, table=cancer_csv, target="target")
    assert (root / "mllife.toml").read_bytes() == before


def _write_csv(path: Path, frame: pl.DataFrame) -> Path:
    frame.write_csv(path)
    return path


BAD_INPUT = {
    "an empty folder": ("images", lambda d: d, "holds no images in class subfolders"),
    "one class": ("images", lambda d: d, "has one class ('cats', 3 images)"),
    "no target column": ("table", lambda d: d / "t.csv", "has no column 'target'"),
    "one target value": ("table", lambda d: d / "t.csv", "holds only 'yes' in 4 rows"),
    "only the target": ("table", lambda d: d / "t.csv", "holds only the target column"),
    "a class folder name that is configuration": (
        "images",
        lambda d: d,
        "cannot name a class: it holds control characters",
    ),
    "a link to a file outside": ("images", lambda d: d, "symbolic link(s): "),
    "a link to a folder": ("images", lambda d: d, "symbolic link(s): "),
    "a link loop": ("images", lambda d: d, "symbolic link(s): "),
    "a 10-row table": (
        "table",
        lambda d: d / "t.csv",
        "each class needs 10 or more, and 'a' has 5",
    ),
    "too few images of a class": ("images", lambda d: d, "each class needs 10 or more"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_clear_error_and_leaves_nothing(tmp_path, case, digits_folder):
    data = tmp_path / "data"
    data.mkdir()
    if case == "one class":
        (data / "cats").mkdir()
        for file in sorted((digits_folder / "0").iterdir())[:3]:
            shutil.copy(file, data / "cats" / file.name)
    elif case == "no target column":
        _write_csv(data / "t.csv", pl.DataFrame({"x": [1, 2], "label": ["a", "b"]}))
    elif case == "one target value":
        _write_csv(data / "t.csv", pl.DataFrame({"x": [1, 2, 3, 4], "target": ["yes"] * 4}))
    elif case == "only the target":
        _write_csv(data / "t.csv", pl.DataFrame({"target": ["a", "b", "a"]}))
    elif case == "a 10-row table":
        _write_csv(data / "t.csv", pl.DataFrame({"x": range(10), "target": ["a", "b"] * 5}))
    elif case != "an empty folder":  # image folders: two good classes, then the case
        for label in ("0", "1"):
            (data / label).mkdir()
            for file in sorted((digits_folder / label).iterdir())[:12]:
                shutil.copy(file, data / label / file.name)
        outside = tmp_path / "outside.png"
        shutil.copy(next((digits_folder / "7").iterdir()), outside)
        if case == "a class folder name that is configuration":
            named = data / 'x\n[serving]\nhost = "0.0.0.0"\n#'
            shutil.copytree(data / "1", named)
        elif case == "a link to a file outside":
            (data / "1" / "secret.png").symlink_to(outside)
        elif case == "a link to a folder":
            (data / "linked").symlink_to(data / "1")
        elif case == "a link loop":
            (data / "0" / "loop.png").symlink_to(data / "0" / "loop.png")
        elif case == "too few images of a class":
            (data / "7").mkdir()
            shutil.copy(outside, data / "7" / "one.png")
    kind, source, message = BAD_INPUT[case]
    root = tmp_path / "project"
    args = ["init", str(root), f"--{kind}", str(source(data))]
    args += ["--target", "target"] if kind == "table" else []
    assert cli(args) == 2
    assert not root.exists()  # nothing half-created
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        init_project(root, **{kind if kind == "table" else "images": source(data)},
                     **({"target": "target"} if kind == "table" else {}))  # fmt: skip
    assert not root.exists()


def test_a_failure_while_writing_removes_what_init_created(tmp_path, cancer_csv, monkeypatch):
    import mllife.scaffold.create as create

    def broken(root, command, what):
        raise create.VersioningError(f"`{what}` failed (simulated)")

    monkeypatch.setattr(create, "_call", broken)
    root = tmp_path / "p"
    with pytest.raises(create.VersioningError, match="simulated"):
        init_project(root, table=cancer_csv, target="target")
    assert not root.exists()
    # In an existing folder only what init added goes; the user's files stay.
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    with pytest.raises(create.VersioningError):
        init_project(root, table=cancer_csv, target="target")
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]


def test_a_dirty_first_csv_is_reported_and_does_not_freeze_text(tmp_path, cancer_csv, capsys):
    frame = pl.read_csv(cancer_csv).select("id", "mean_radius", "mean_texture", "target")
    dirty = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 16)
        .then(pl.lit("n/a"))
        .otherwise(pl.col("mean_texture").cast(pl.String))
        .alias("mean_texture")
    )
    csv = _write_csv(tmp_path / "wine.csv", dirty)
    root = tmp_path / "wine"
    assert cli(["init", str(root), "--table", str(csv), "--target", "target"]) == 0
    out = capsys.readouterr().out
    assert 'mean_texture looks numeric; 1 value is not a number: "n/a" at row 17' in out
    assert "treat it as missing?" in out

    config = load_config(root / "mllife.toml")
    raw = read_raw(config)
    assert raw.manifest["mean_texture"].dtype == pl.Float64  # read as a number...
    assert raw.manifest["mean_texture"][16] is None  # ...with "n/a" missing
    assert raw_contract(config, raw).passed
    said = settle_contract(config, raw)
    assert "not frozen" in said and "mean_texture looks numeric" in said
    assert not config.schema_path.exists()  # a guess is not frozen without a word

    assert cli(["--config", str(config.path), "schema", "show"]) == 0
    shown = capsys.readouterr().out
    assert "not frozen yet" in shown and '(the text "n/a" counts as missing)' in shown
    assert cli(["--config", str(config.path), "schema", "freeze"]) == 0
    frozen = json.loads(config.schema_path.read_text())["columns"]["mean_texture"]
    assert frozen["dtype"] == "float" and frozen["missing_values"] == ["n/a"]
    assert frozen["nullable"] is True
    # Frozen: the next run reads the contract from the file, with no doubts left.
    again = read_raw(config)
    assert again.contract_frozen and not again.contract_findings
    assert raw_contract(config, again).passed
    # An unexpected word in that column is now a contract failure naming the column.
    dirty.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("oops"))
        .otherwise(pl.col("mean_texture"))
        .alias("mean_texture")
    ).write_csv(config.data_path)
    result = raw_contract(config, read_raw(config))
    assert not result.passed and any(k.startswith("mean_texture") for k in result.counts)


def test_pretrained_candidates_when_resnet_weights_are_in_the_hub_cache(
    tmp_path, digits_folder, monkeypatch
):
    from mllife.scaffold.config_text import RESNET18_FILE

    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    root = tmp_path / "without"
    init_project(root, images=digits_folder)
    assert [c.name for c in load_config(root / "mllife.toml").configured_candidates] == ["cnn"]
    (hub / RESNET18_FILE).write_bytes(b"weights")  # only its presence is looked at here
    root = tmp_path / "with"
    init_project(root, images=digits_folder)
    config = load_config(root / "mllife.toml")
    kinds = {c.name: (c.kind, c.architecture, c.weights) for c in config.configured_candidates}
    assert kinds == {
        "embed": ("embedding", "resnet18", "IMAGENET1K_V1"),
        "resnet": ("torch", "resnet18", "IMAGENET1K_V1"),
    }
    assert config.data.image_size == 128


def test_row_patterns_must_match_the_table_contract(tmp_path, cancer_csv, capsys):
    root = tmp_path / "cancer"
    init_project(root, table=cancer_csv, target="target", id="id")
    args = ["--config", str(root / "mllife.toml")]
    assert cli([*args, "problems", "add", "tiny", "--description", "tiny tumours"]) == 0
    row = json.dumps({"mean_radius": 7.0, "colour": "red"})
    assert cli([*args, "patterns", "add", "tiny", "--input", row, "--expected", "benign",
                "--kind", "positive", "--source", "contrived"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "has unknown ['colour']" in err and "lacks ['area_error'" in err
    # A shipped problem file with such rows stops the run before training, named.
    problem = root / "problems" / "odd_rows"
    problem.mkdir()
    (problem / "problem.toml").write_text(
        'description = "rows of another table"\n[[patterns]]\nrow = { colour = "red" }\n'
        'expected = "benign"\nkind = "positive"\n'
    )
    from mllife.problems.registry import ProblemRegistry

    config = load_config(root / "mllife.toml")
    registry = ProblemRegistry(config, Store(config.store_path))
    with pytest.raises(
        Exception, match=r"odd_rows/problem.toml, pattern 1: .*unknown \['colour'\]"
    ):
        registry.read_problem_files(config.problems_dir, classes=["benign", "malignant"])


def test_init_states_what_the_split_sizes_allow_and_warns_on_a_small_test_split(tmp_path):
    """178 rows (sklearn's wine table): 18 test rows know an accuracy to about ±14 points,
    too wide for the default 5-point gates: said at init, with the rows that would do."""
    from mllife.config.project import load_config
    from mllife.scaffold.create import split_outlook

    (tmp_path / "mllife.toml").write_text(
        '[data]\nkind = "table"\npath = "t.csv"\ntarget = "y"\n'
        '[[candidates]]\nname = "lr"\nkind = "sklearn"\nestimator = "a.B"\n'
    )
    config = load_config(tmp_path / "mllife.toml")
    small = split_outlook(178, config)
    assert small[0].startswith("split 80/10/10: about 142 train, 18 validation and 18 test")
    assert "known to about ±14 points" in small[0]
    assert small[1].startswith("warning: the test split is small for the default gates")
    assert "[promotion] max_val_test_gap" in small[1] and "[split] test" in small[1]
    needed = int(re.search(r"about (\d+) test rows", small[1])[1])
    assert split_outlook(needed * 10, config)[1:] == []  # that many rows: no warning
    assert len(split_outlook(20_000, config)) == 1
