import os
import shutil
from pathlib import Path

import pytest

from mllife._cpus import usable_cpus
from mllife.data.defaults import write_digits  # torch-free: torch is not loaded yet
from mllife.storage.locks import file_lock


def _share_the_cpus_between_workers() -> None:
    """Each test worker's torch (and every process it starts: code servers, run workers,
    steps, servers) gets its share of the CPUs, not all of them. Torch's OpenMP pool
    busy-waits: two workers each running as many threads as there are cores made a
    training step about six times slower than one thread each (measured: a resnet18
    pretraining 9 s alone, 62 s beside two busy processes, 16 s on one thread beside one).
    Set before any test module imports torch; a value set by hand wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cpus() // workers)))


_share_the_cpus_between_workers()

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Compile the project's modules once, before the workers start. The suite starts
    hundreds of Python processes (runs, run workers, servers, workers); where the machine
    sets PYTHONDONTWRITEBYTECODE (the machines here do), none of them writes its bytecode, and
    each compiled the ~150 modules it imports from source again: 0.5-0.9 s a process."""
    if not hasattr(config, "workerinput"):  # the controller, or a run without xdist
        import compileall

        for package in ("mllife", "assets", "tests", "benchmarks"):
            compileall.compile_dir(REPO / package, quiet=1)


SMALL_CONFIG = """
[data]
path = "data/digits"

[split]
seed = 0

[[candidates]]
name = "logreg"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
params = {{ C = 0.5, max_iter = 2000 }}

[[candidates]]
name = "cnn"
kind = "torch"
architecture = "small_cnn"
params = {{ epochs = {epochs}, batch_size = 64, lr = 0.003, seed = 0 }}

[promotion]
min_accuracy = 0.8
max_val_test_gap = 0.08
{extra}
"""


@pytest.fixture(scope="session")
def all_digits(tmp_path_factory) -> Path:
    """The embedded digits (1,797 images), written once per test worker."""
    target = tmp_path_factory.mktemp("digits") / "digits"
    write_digits(target)
    return target


@pytest.fixture(scope="session")
def digits_folder(all_digits) -> Path:
    """The digits a test's project uses (a module may narrow it, as test_runs.py does)."""
    return all_digits


@pytest.fixture(scope="session")
def small_digits_folder(tmp_path_factory, all_digits) -> Path:
    """40 digits of each class (400 images): for tests of run mechanics (crashes,
    resumes, concurrency, executors) whose assertions compare runs with each other, not
    accuracy; a run on it costs about three quarters of one on all 1,797."""
    target = tmp_path_factory.mktemp("small_digits") / "digits"
    for label in sorted(p.name for p in all_digits.iterdir()):
        (target / label).mkdir(parents=True)
        for file in sorted((all_digits / label).iterdir())[:40]:
            shutil.copy(file, target / label / file.name)
    return target


def make_project(root: Path, digits: Path, *, epochs: int = 4, extra: str = "") -> Path:
    """A project folder with its own mllife.toml and a copy of the digits data."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "mllife.toml").write_text(SMALL_CONFIG.format(epochs=epochs, extra=extra))
    shutil.copytree(digits, root / "data" / "digits")
    shutil.copytree(REPO / "problems", root / "problems")  # the shipped known problems
    return root / "mllife.toml"


@pytest.fixture
def project(tmp_path, digits_folder) -> Path:
    return make_project(tmp_path / "project", digits_folder)


@pytest.fixture(scope="session")
def deployed_digits(tmp_path_factory, digits_folder):
    """The small digits project (``make_project``) after one successful lifecycle run on
    its own Dagster instance: a champion deployed, the store, artifacts, report and event
    log written. Made once per test worker; many tests read it. Never change it: a test
    that runs again or edits anything works on ``copy_project(...)`` of it."""
    from assets.runtime.run import run_lifecycle

    config_path = make_project(tmp_path_factory.mktemp("deployed") / "project", digits_folder)
    outcome = run_lifecycle(config_path, log_level="WARNING")
    assert outcome.success, "\n".join(outcome.lines)
    return config_path, outcome


def built_once(tmp_path_factory, worker_id: str, name: str, build) -> Path:
    """A folder that ``build(folder)`` fills once per test session, whichever worker asks
    first (the others wait for it under a file lock, then find it done): for expensive
    setups that tests only copy. Tests never change it: each works on a ``copy_project``."""
    if worker_id == "master":  # not under xdist: this session's own temp folder
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # the session's, above each worker's
    folder = shared / name
    with file_lock(shared / f"{name}.lock", timeout=900, what=f"building {name}"):
        if not (folder / ".built").is_file():
            if folder.exists():  # a build that failed on another worker: start afresh
                shutil.rmtree(folder)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture(scope="session")
def clean_small_run(tmp_path_factory, worker_id, small_digits_folder) -> Path:
    """The small digits (``make_project(..., epochs=2)``) after one clean, sequential
    lifecycle run, made once per session: the reference that crashed, resumed,
    concurrent and Celery runs of the same project must reproduce. Its config path; copy
    it (``copy_project``) to read or run it."""
    from assets.runtime.run import run_lifecycle

    def build(folder: Path) -> None:
        config_path = make_project(folder / "p", small_digits_folder, epochs=2)
        outcome = run_lifecycle(config_path, log_level="WARNING")
        assert outcome.success, "\n".join(outcome.lines)

    return built_once(tmp_path_factory, worker_id, "clean_small_run", build) / "p" / "mllife.toml"


def copy_project(config_path: Path, target: Path) -> Path:
    """A private copy of a project folder, its instance, store and artifacts included
    (every path in them is relative to the folder): runs on it start where it stood."""
    shutil.copytree(Path(config_path).parent, target, symlinks=True)
    return target / Path(config_path).name


class RecordedModels:
    """Small logistic regressions on a digits sample, saved and recorded in a store —
    the model versions that promotion and known-problem tests work with."""

    def __init__(self, config, store, digits: Path, *, stride: int = 7) -> None:
        import numpy as np

        from mllife.preprocess.images import ImagePreprocessor

        self.config, self.store = config, store
        files = sorted(digits.rglob("*.png"))[::stride]
        self.y = np.array([int(f.parent.name) for f in files])
        self.pre = ImagePreprocessor(size=8)
        self.x = self.pre.fit_transform(files)

    def new(self, c: float):
        from mllife.config.project import CandidateConfig
        from mllife.models import build_model
        from mllife.models.registry import save_model

        spec = CandidateConfig(
            name=f"m{self.store.models().height}",
            kind="sklearn",
            estimator="sklearn.linear_model.LogisticRegression",
            params={"C": c, "max_iter": 500},
        )
        model = build_model(spec, classes=[str(i) for i in range(10)], preprocessor=self.pre)
        model.fit(self.x, self.y, self.x, self.y, log=lambda _: None)
        ref = save_model(model, artifacts_dir=self.config.artifacts_dir)
        self.store.record_model(
            model_hash=ref.model_hash,
            name=spec.name,
            kind="sklearn",
            spec={},
            data_version="d",
            split_version="s",
            artifact_path=ref.relative_path,
            size_bytes=ref.size_bytes,
            fit_seconds=0.0,
            run_id=None,
        )
        return ref


#: the files whose tests take longest (see the durations CI prints): started first, so
#: that no long test starts last while the other workers have nothing left to do
SLOW_FIRST = (
    "tests/reliability/test_runs.py",
    "tests/team/test_celery_workers.py",
    "tests/test_memo.py",
    "tests/test_photos.py",
    "tests/test_versioning_lineage.py",
    "tests/team/test_postgres_profile.py",
    "tests/test_init.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        path = item.nodeid.split("::")[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order
