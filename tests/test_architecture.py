"""The package layout is a rule, checked: stages import only stages below them.

Every import in ``mllife/`` counts, at module level or inside a function (an import
moved into a function is the same dependency, only hidden). A failure names the
importing module, the line and the imported module.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mllife"

#: the floors, lowest first; a module may import its own floor and the ones below
FLOORS = [
    ("mllife._errors", "mllife._faults", "mllife._cpus"),
    ("mllife.metrics",),
    ("mllife.config",),
    ("mllife.storage",),
    ("mllife.data",),
    ("mllife.preprocess",),
    ("mllife.models",),
    ("mllife.evaluation",),
    ("mllife.problems",),
    ("mllife.promotion",),
    ("mllife.monitoring",),
    ("mllife.review",),
    ("mllife.serve",),
    ("mllife.reporting",),
    ("mllife.scaffold",),
    ("mllife.cli",),
]


def _floor(module: str) -> int | None:
    for level, prefixes in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(line, imported module) for every import in the file, relative ones resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # "from mllife import keys" imports mllife.keys
                name = f"{target}.{alias.name}"
                if _is_module(name):
                    yield node.lineno, name


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _violations(rule) -> list[str]:
    found = []
    for path in _modules():
        module = _module_name(path)
        for line, imported in _imports(path):
            why = rule(module, imported)
            if why:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {imported}: {why}")
    return found


def test_every_module_of_the_library_sits_on_a_floor():
    homeless = [
        _module_name(p)
        for p in _modules()
        if _module_name(p) != "mllife" and _floor(_module_name(p)) is None
    ]
    assert not homeless, f"modules outside every stage (add them to a subpackage): {homeless}"


def test_lower_stages_never_import_higher_ones():
    def rule(module, imported):
        mine, theirs = _floor(module), _floor(imported)
        if mine is None or theirs is None or theirs <= mine:
            return None
        return f"{FLOORS[theirs][0]} is above {FLOORS[mine][0]}"

    violations = _violations(rule)
    assert not violations, "\n".join(violations)


def test_the_library_never_imports_dagster_or_the_asset_graph():
    def rule(module, imported):
        top = imported.split(".")[0]
        return "the library stays free of Dagster" if top in ("dagster", "assets") else None

    violations = _violations(rule)
    assert not violations, "\n".join(violations)


def test_metrics_import_nothing_of_mllife_but_errors():
    def rule(module, imported):
        if not module.startswith("mllife.metrics") or not imported.startswith("mllife"):
            return None
        if imported.startswith("mllife.metrics") or imported.startswith("mllife._errors"):
            return None
        if imported == "mllife" or imported.startswith("mllife._errors"):
            return None
        return "metrics are the ground floor: pure numpy, only mllife._errors"

    violations = _violations(rule)
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("heavy", ["torch", "torchvision"])
def test_the_data_stage_does_not_import_torch(heavy):
    def rule(module, imported):
        if module.startswith("mllife.data") and imported.split(".")[0] == heavy:
            return f"the data stage must not need {heavy}"
        return None

    violations = _violations(rule)
    assert not violations, "\n".join(violations)


def _loaded_in_a_fresh_interpreter(modules: str, watched: tuple[str, ...]) -> str:
    """Which of ``watched`` importing ``modules`` (comma-separated) loads, as printed by
    a new interpreter: "[]" for none."""
    import subprocess

    code = f"import sys, {modules}; print(sorted(m for m in {watched!r} if m in sys.modules))"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()


def test_the_data_stage_loads_without_torch_in_a_fresh_interpreter():
    out = _loaded_in_a_fresh_interpreter(
        "mllife.data.stage, mllife.data.add, mllife.data.split", ("torch", "torchvision", "dagster")
    )
    assert out == "[]", f"importing the data stage loaded {out}"


@pytest.mark.parametrize("module", ["assets.definitions", "assets.runtime.run", "mllife.cli"])
def test_loading_the_graph_and_the_command_does_not_import_torch(module):
    """The code server, the run planner and the command load these on every run: torch
    and torchvision (seconds of CPU each time) load only in the steps that use a model.
    On failure the message names the import chain that pulled torch in."""
    import subprocess

    code = (
        "import sys, traceback, importlib, importlib.abc\n"
        "class Trip(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'torchvision'):\n"
        "            chain = [f'{f.filename}:{f.lineno}' for f in traceback.extract_stack()\n"
        "                     if '/importlib/' not in f.filename and '<frozen' not in f.filename]\n"
        "            if not any('polars/_dependencies' in f for f in chain):  # a probe only\n"
        "                print(name, 'imported by', ' <- '.join(reversed(chain)))\n"
        "sys.meta_path.insert(0, Trip())\n"
        f"loaded = importlib.import_module({module!r})\n"
        "if hasattr(loaded, 'defs'): loaded.defs()  # the graph is built when Dagster loads it\n"
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert out.endswith("[]"), f"importing {module} loaded torch:\n{out}"


def test_the_rule_names_the_offending_import(tmp_path, monkeypatch):
    """The checker itself: a planted upward import is reported with file, line, target."""
    global PACKAGE, ROOT
    fake = tmp_path / "mllife" / "data"
    fake.mkdir(parents=True)
    (tmp_path / "mllife" / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "bad.py").write_text("import os\n\ndef f():\n    from mllife.models import registry\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "mllife")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    violations = _violations(lambda m, i: "up" if (_floor(i) or 0) > (_floor(m) or 0) else None)
    assert violations == ["mllife/data/bad.py:4 imports mllife.models: up"]


def test_importing_the_graph_needs_no_project_and_loading_it_says_what_is_missing(tmp_path):
    """Importing ``assets.definitions`` (a script, a worker's preload) builds nothing;
    Dagster loading it outside a project gets the ConfigError naming what to do."""
    import subprocess

    env = {k: v for k, v in __import__("os").environ.items() if k != "MLLIFE_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    code = "import assets.definitions as d\nprint('imported')\nd.defs()\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.stdout.strip() == "imported", done.stderr[-2000:]
    assert done.returncode != 0
    assert "ConfigError: no mllife.toml in" in done.stderr and "pass --config" in done.stderr


def test_every_asset_that_writes_the_store_itself_runs_in_a_one_writer_pool():
    """DuckDB allows one writing process: an asset whose own body records into the store
    takes the store's pool (or the champion's, which also serializes). Training and
    evaluation write only briefly after minutes of compute, through the library, and stay
    parallel by design (assets/graph/pools.py)."""
    import inspect
    import shutil
    import tempfile

    from assets.definitions import build_definitions
    from assets.graph import pools

    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(ROOT / "mllife.toml", Path(folder) / "mllife.toml")
        definitions = build_definitions(Path(folder) / "mllife.toml")
    offenders = []
    for asset in definitions.assets:
        body = inspect.getsource(asset.op.compute_fn.decorated_fn)
        if ".store.record_" in body or ".store.writing(" in body:
            if asset.op.pool not in (pools.STORE, pools.CHAMPION):
                offenders.append(f"{asset.op.name} (pool {asset.op.pool})")
    assert not offenders, f"write the store outside a one-writer pool: {offenders}"


def test_private_dagster_names_are_used_in_one_module_only():
    """Dagster's private API (``dagster._*``, a library's ``_name``, a method starting
    with an underscore on a Dagster object) only in ``assets/dagster_private.py``, where
    each use names the versions it was checked against: an upgrade is checked there."""
    allowed = ROOT / "assets" / "dagster_private.py"
    found = []
    for path in sorted([*(ROOT / "assets").rglob("*.py"), *PACKAGE.rglob("*.py")]):
        if path == allowed:
            continue
        for line, imported in _imports(path):
            top = imported.split(".")
            private = top[0].startswith("dagster") and any(p.startswith("_") for p in top[1:])
            if private:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dagster"):
                names = [a.name for a in node.names if a.name.startswith("_")]
                found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names]
    assert not found, "private Dagster API outside assets/dagster_private.py:\n" + "\n".join(found)
    text = allowed.read_text()
    assert "Checked against: dagster 1.13" in text
    import dagster

    assert dagster.__version__.startswith("1.13."), (
        f"Dagster {dagster.__version__} is installed; assets/dagster_private.py was checked"
        " against 1.13: check each name there, then update the pin and this test"
    )


#: assets/ by role: the Dagster definitions (graph), the command-line runtime and the
#: executors; a role may import the ones after it in this table, never the ones before
ASSET_ROLES = ("assets.runtime", "assets.executors", "assets.graph")


def test_the_asset_graph_reads_like_the_lifecycle_and_its_roles_stay_apart():
    """Three subpackages with one role each; the graph never imports the runtime or the
    executors (a step never needs the command line), the executors never the runtime."""
    top = sorted(p.name for p in (ROOT / "assets").glob("*.py"))
    assert top == ["__init__.py", "dagster_private.py", "definitions.py"], top
    found = []
    for path in sorted((ROOT / "assets").rglob("*.py")):
        module = _module_name(path)
        role = next((r for r in ASSET_ROLES if module.startswith(r + ".")), None)
        if role is None:
            continue
        for line, imported in _imports(path):
            other = next((r for r in ASSET_ROLES if imported.startswith(r)), None)
            if other and ASSET_ROLES.index(other) < ASSET_ROLES.index(role):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    assert not found, "an asset role imports one above it:\n" + "\n".join(found)
    stages = {p.stem for p in (ROOT / "assets" / "graph").glob("*.py")}
    lifecycle = {"data", "training", "evaluation", "problems", "deployment", "rollout",
                 "monitoring", "reports", "versioning"}  # fmt: skip
    assert lifecycle <= stages


def test_a_table_model_and_its_server_load_without_torchvision():
    """Loading a scikit-learn model (its base class knows image preprocessing) and the
    server's app: torchvision (~1.2 s: its ops pull in torch._dynamo) loads only where an
    image is transformed."""
    out = _loaded_in_a_fresh_interpreter(
        "mllife.serve._app, mllife.models.sklearn_model", ("torchvision", "torch._dynamo")
    )
    assert out == "[]", f"a table model's server loaded {out}"
