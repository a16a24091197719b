"""Wall time of a full `mllife run` from an empty state, per asset, and the share of it
spent outside model fitting (orchestration, I/O, DVC, imports).

    python benchmarks/bench_lifecycle.py [--keep]

It copies the project's mllife.toml, data.dvc and DVC config into a fresh git repo in a
temp dir (no data, no store, no Dagster instance), runs the real `mllife run` command,
then reads Dagster's own step records and the store's fit times. Then the same project
unchanged, after a promotion-policy edit (beside a bare `dagster asset materialize` of the
same assets, in this run), and after adding 1% new images.
Targets: full run <= 60 s on the 2-core machine (the README quotes it); outside fitting <= 30%;
a policy edit <= 5 s end to end with a fixed cost (wall less the steps) <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def prepare(workdir: Path) -> Path:
    for name in ("mllife.toml", "data.dvc", "workspace.yaml"):
        shutil.copy(REPO / name, workdir / name)
    shutil.copytree(REPO / ".dvc", workdir / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp"))
    (workdir / ".gitignore").write_text("/data/\n/.mllife/\n")
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    return workdir / "mllife.toml"


def _import_seconds() -> float:
    """The graph's imports in a fresh interpreter (best of 2): a fixed cost of any run."""
    code = (
        "import time, os; t = time.perf_counter(); import assets.definitions;"
        " print(time.perf_counter() - t); os._exit(0)"
    )
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
            ).stdout
        )
        for _ in range(2)
    ]
    return min(runs)


_DAGSTER_FLOOR = """
import os, sys, tempfile, time
import dagster as dg

home = tempfile.mkdtemp(prefix="mllife-floor-")
os.environ["DAGSTER_HOME"] = home
with open(os.path.join(home, "dagster.yaml"), "w") as f:
    f.write("telemetry:\\n  enabled: false\\n")
n_assets, n_checks = int(sys.argv[1]), int(sys.argv[2])


def make_asset(i):
    if i == 0:

        @dg.asset(name="a0")
        def _first():
            return 0

        return _first

    @dg.asset(name=f"a{i}", ins={"previous": dg.AssetIn(key=f"a{i - 1}")})
    def _asset(previous):
        return i

    return _asset


def make_check(i):
    @dg.asset_check(asset=f"a{i}", name=f"c{i}", blocking=True)
    def _check(value):
        return dg.AssetCheckResult(passed=True)

    return _check


assets = [make_asset(i) for i in range(n_assets)]
checks = [make_check(i) for i in range(n_checks)]
started = time.perf_counter()
instance = dg.DagsterInstance.get()
created = time.perf_counter()
io = dg.FilesystemIOManager(base_dir=os.path.join(home, "storage"))
result = dg.materialize([*assets, *checks], instance=instance, resources={"io_manager": io})
assert result.success
print(created - started, time.perf_counter() - created)
os._exit(0)
"""


def _dagster_floor(n_steps: int, n_checks: int) -> tuple[float, float]:
    """Instance creation and a run of ``n_steps`` no-op steps (``n_checks`` of them asset
    checks) on a fresh SQLite instance: what Dagster itself costs a graph of this size."""
    done = subprocess.run(
        [sys.executable, "-c", _DAGSTER_FLOOR, str(n_steps - n_checks), str(n_checks)],
        capture_output=True,
        text=True,
        check=True,
    )
    instance, run = (float(x) for x in done.stdout.split())
    return instance, run


def _explain_outside(wall: float, fit: float, phases: str, steps, n_checks: int) -> None:
    """Where the time outside fitting goes, and how it compares with the 30% budget."""
    phase: dict[str, float] = {}
    for part in phases.removeprefix("timings: ").split(", "):
        name, value, _unit = part.rsplit(" ", 2)
        phase[name] = float(value)
    in_steps = sum(s.end_time - s.start_time for s in steps if s.start_time and s.end_time)
    budget = fit * 0.3 / 0.7  # the most non-fit time a run with this fit may take
    imports = _import_seconds()
    parts = {
        "CLI interpreter + imports, up-to-date check": phase.get("startup_and_imports", 0)
        + phase.get("check", 0),
        "code server: loading the graph": phase.get("code_server", 0),
        "waiting for the default data": phase.get("data_init_wait", 0),
        "planning and submitting the run": phase.get("submit", 0),
        "run worker start (its imports) + between steps": phase.get("dagster_run", 0) - in_steps,
        "steps, less their model fitting": in_steps - fit,
        "summary (reads the stored results)": phase.get("summary", 0),
    }
    parts["unaccounted (parent process, exit, clock rounding)"] = wall - fit - sum(parts.values())
    print("  outside fitting, by part:")
    for name, seconds in parts.items():
        print(f"    {name:<46} {seconds:5.1f} s")
    n_steps = len(steps)
    instance, machinery = _dagster_floor(n_steps, n_checks)
    # a run through the instance imports the graph twice: in the code server that
    # plans it and in the run worker that executes it
    floor = 2 * imports + instance + machinery
    print(
        f"  budget for 30% with this fit: {budget:.1f} s. Fixed costs, measured now:\n"
        f"    the graph's imports (code server + run worker)  2 x {imports:4.1f} s\n"
        f"    a new Dagster instance (SQLite)                 {instance:5.1f} s\n"
        f"    {n_steps} no-op steps ({n_checks} checks) on it              {machinery:5.1f} s\n"
        f"    together {floor:.1f} s = {floor / budget:.0%} of the budget, before any data,"
        " evaluation, report or DVC work"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temp project")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mllife-bench-"))
    config = prepare(workdir)
    mllife = Path(sys.executable).with_name("mllife")
    started = time.perf_counter()
    done = subprocess.run(
        [str(mllife), "--config", str(config), "run"], cwd=workdir, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    print(done.stdout[-3000:])
    if done.returncode != 0:
        print(done.stderr[-5000:])
        raise SystemExit(f"mllife run failed with exit code {done.returncode}")

    os.environ["DAGSTER_HOME"] = str(workdir / ".mllife" / "dagster")
    import dagster as dg

    from mllife.storage.store import Store

    instance = dg.DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    steps = sorted(instance.get_run_step_stats(run.run_id), key=lambda s: s.start_time or 0)
    fit = sum(Store(workdir / ".mllife" / "store.duckdb").models()["fit_seconds"].to_list())
    print(f"full `mllife run` from empty state: {wall:.1f} s wall (target <= 60 s)")
    phases = next((ln for ln in done.stdout.splitlines() if ln.startswith("timings: ")), "")
    print(f"  phases (child process): {phases.removeprefix('timings: ')}")
    print("  per step (Dagster step records):")
    for step in steps:
        if step.start_time and step.end_time:
            print(f"    {step.step_key:<36} {step.end_time - step.start_time:7.2f} s")
    print(f"  model fitting (sum of fit_seconds in the store): {fit:.1f} s")
    dvc_step = sum(
        s.end_time - s.start_time
        for s in steps
        if s.step_key == "artifact_versions" and s.start_time and s.end_time
    )
    data_init = next(
        (
            float(ln.split()[-2])
            for ln in done.stdout.splitlines()
            if ln.startswith("dvc add data:")
        ),
        0.0,
    )
    dvc = dvc_step + data_init
    print(
        f"  DVC work: artifact tracking {dvc_step:.1f} s + data pin {data_init:.1f} s ="
        f" {dvc:.1f} s = {dvc / wall:.1%} of wall (target <= 10%)"
    )
    outside = wall - fit
    print(
        f"  outside model fitting: {outside:.1f} s = {outside / wall:.0%} of wall (target <= 30%)"
    )
    materialized = {
        e.step_key
        for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    }
    n_checks = sum(1 for s in steps if s.step_key not in materialized)
    _explain_outside(wall, fit, phases, steps, n_checks)
    memoized_runs(workdir, config, mllife)
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def memoized_runs(workdir: Path, config: Path, mllife: Path) -> None:
    """The second run on the unchanged project, then one after adding 1% new images
    (issue 22): wall time, steps skipped and model fits, from the command's own output."""
    import re

    from PIL import Image

    from mllife.storage.store import Store

    def run() -> tuple[float, str]:
        started = time.perf_counter()
        done = subprocess.run([str(mllife), "--config", str(config), "run"], cwd=workdir,
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"mllife run failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
        return time.perf_counter() - started, done.stdout

    wall, out = run()
    said = next(ln for ln in out.splitlines() if "up to date, 0 rerun" in ln)
    print(f"second `mllife run`, unchanged project: {wall:.1f} s wall (target <= 5 s); {said}")
    policy_edit(workdir, config, run)
    data = workdir / "data" / "digits"
    files = sorted(data.rglob("*.png"))
    for i, source in enumerate(files[::100]):  # 1% new images: slightly rotated copies
        Image.open(source).rotate(8).save(source.parent / f"new_{i:03d}.png")
    store = Store(workdir / ".mllife" / "store.duckdb")
    fitted_before = sum(store.models()["fit_seconds"].to_list())
    wall, out = run()
    fitted = sum(store.models()["fit_seconds"].to_list()) - fitted_before
    memo = next((ln for ln in out.splitlines() if "rerun" in ln), "")
    fits = re.search(r"model fits: (\d+)", memo)
    print(
        f"after adding {len(files[::100])} images (1%): {wall:.1f} s wall, model fits"
        f" {fits[1] if fits else '?'}, fitting {fitted:.1f} s = {fitted / wall:.0%} of wall;"
        f" {memo.split(' (')[0]}"
    )


def _steps_seconds(workdir: Path) -> tuple[float, list[str], str]:
    """The newest run's steps: their summed durations, its asset selection, its id."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(workdir / ".mllife" / "dagster")
    instance = dg.DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    stats = instance.get_run_step_stats(run.run_id)
    seconds = sum(s.end_time - s.start_time for s in stats if s.start_time and s.end_time)
    selection = sorted(k.to_user_string() for k in run.asset_selection or ())
    return seconds, selection, run.run_id


_BARE_MATERIALIZE = """
import os, sys
import dagster as dg
from assets.dagster_private import ReconstructableRepository

repository = ReconstructableRepository.for_module(
    "assets.definitions", "defs", working_directory=os.getcwd()
)
result = dg.execute_job(
    repository.get_reconstructable_job("lifecycle"),
    instance=dg.DagsterInstance.get(),
    asset_selection=[dg.AssetKey(name) for name in sys.argv[1:]],
    run_config={"execution": {"config": {"in_process": {}}}},  # as `mllife run`'s
)
os._exit(0 if result.success else 1)
"""


def policy_edit(workdir: Path, config: Path, run) -> None:
    """A promotion-policy edit (no model fit): `mllife run` end to end, its fixed cost
    (wall less the steps' own time), beside a bare Dagster materialization of the same
    assets on the same instance in this run (issue 47: fixed cost <= 3 s, total <= 5 s)."""
    text = config.read_text()
    config.write_text(text.replace("min_accuracy = 0.9\n", "min_accuracy = 0.905\n", 1))
    wall, out = run()
    steps, selection, _ = _steps_seconds(workdir)
    phases = next((ln for ln in out.splitlines() if ln.startswith("timings: ")), "")
    print(
        f"policy edit, `mllife run`: {wall:.1f} s wall (target <= 5 s), steps {steps:.1f} s,"
        f" fixed cost {wall - steps:.1f} s (target <= 3 s); {len(selection)} assets rerun;"
        f" {phases}"
    )
    # what `dagster asset materialize --select ...` runs: Dagster's execute_job of the
    # code location's job on the selected assets, in one process (its --select parser
    # itself cannot load here: DVC's hydra pins antlr4 4.9, Dagster's parser needs 4.13)
    command = [sys.executable, "-c", _BARE_MATERIALIZE, *selection]
    env = {**os.environ, "DAGSTER_HOME": str(workdir / ".mllife" / "dagster"),
           "MLLIFE_CONFIG": str(config), "PYTHONPATH": str(REPO)}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    bare = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the bare materialization failed:\n{done.stderr[-3000:]}")
    bare_steps, _, _ = _steps_seconds(workdir)
    print(
        f"  the same assets by Dagster's own execute_job: {bare:.1f} s wall, steps"
        f" {bare_steps:.1f} s, fixed cost {bare - bare_steps:.1f} s; mllife run / bare:"
        f" wall {wall / bare:.2f}x, fixed cost {(wall - steps) / (bare - bare_steps):.2f}x"
    )
    config.write_text(text)


if __name__ == "__main__":
    main()
