"""Code versions per asset from the code each step runs and the configuration it reads:
an edit makes stale exactly what it can change."""

from __future__ import annotations

import shutil
from pathlib import Path

from assets.definitions import build_definitions
from assets.graph.code_versions import module_closure
from tests.conftest import REPO


def _versions(config_path: Path) -> dict[str, str]:
    specs = build_definitions(str(config_path)).resolve_all_asset_specs()
    return {spec.key.to_user_string(): spec.code_version for spec in specs}


def test_an_edit_makes_stale_only_what_reads_it(tmp_path):
    shutil.copy(REPO / "mllife.toml", tmp_path / "mllife.toml")
    config = tmp_path / "mllife.toml"
    before = _versions(config)
    text = config.read_text()
    assert "max_iter = 2000" in text and "min_accuracy = 0.9" in text
    config.write_text(text.replace("max_iter = 2000", "max_iter = 3000"))
    after = _versions(config)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"candidate_logreg", "status_report"}
    config.write_text(text.replace("min_accuracy = 0.9", "min_accuracy = 0.95"))
    changed = {name for name, v in _versions(config).items() if v != before[name]}
    assert "challenger" in changed and "champion" in changed
    assert not any(name.startswith("candidate_") for name in changed)
    assert "raw_data" not in changed and "splits" not in changed


def test_the_code_of_a_step_is_what_its_module_reaches():
    graph = REPO / "assets" / "graph"
    data = {p.relative_to(REPO).as_posix() for p in module_closure(graph / "data.py")}
    training = {p.relative_to(REPO).as_posix() for p in module_closure(graph / "training.py")}
    assert "mllife/data/images.py" in data and "mllife/models/torch_model.py" in training
    assert "mllife/models/torch_model.py" not in data  # the data stage runs no model code
    assert "mllife/serve/_app.py" not in data | training  # the server is not in the graph


def test_the_quick_up_to_date_check_knows_every_assets_code_version(tmp_path):
    """`mllife run` tells an unchanged project without importing the graph, from a table
    of the modules computing each asset: it must give the definitions' own versions."""
    from assets.graph.code_versions import expected_code_versions
    from mllife.config.project import load_config

    shutil.copy(REPO / "mllife.toml", tmp_path / "mllife.toml")
    config = tmp_path / "mllife.toml"
    assert expected_code_versions(load_config(config)) == _versions(config)


def test_the_planner_knows_every_blocking_check(tmp_path):
    """`mllife run` reuses a result only when its blocking checks passed on it, from a
    table of those checks: it must name exactly the definitions' blocking checks."""
    from assets.graph.acceptance import BLOCKING_CHECKS

    shutil.copy(REPO / "mllife.toml", tmp_path / "mllife.toml")
    graph = build_definitions(str(tmp_path / "mllife.toml")).resolve_asset_graph()
    blocking: dict[str, set[str]] = {}
    for check_key in graph.asset_check_keys:
        if graph.get_check_spec(check_key).blocking:
            blocking.setdefault(check_key.asset_key.to_user_string(), set()).add(check_key.name)
    assert blocking == {asset: set(names) for asset, names in BLOCKING_CHECKS.items()}


def _ast_imports(source: str) -> set[str]:
    """What the Python parser says a module imports from mllife or assets (the reference
    the text reading is held to)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return {name for name in names if name.split(".")[0] in ("mllife", "assets")}


def test_imports_read_as_text_are_what_the_parser_finds_in_every_module():
    from assets.graph.code_versions import imported_names

    files = sorted([*REPO.glob("mllife/**/*.py"), *REPO.glob("assets/**/*.py")])
    assert len(files) > 100
    for file in files:
        source = file.read_text()
        assert set(imported_names(source)) == _ast_imports(source), file
    tricky = (
        "from mllife.models import (\n    TorchModel,  # a comment\n    build_model as b,\n)\n"
        "def f():\n    import assets.runtime.memo, mllife.cli as c\n"
        "    from assets.runtime.run import \\\n        main\n"
    )
    assert set(imported_names(tricky)) == _ast_imports(tricky) == {
        "mllife.models", "mllife.models.TorchModel", "mllife.models.build_model",
        "assets.runtime.memo", "mllife.cli", "assets.runtime.run", "assets.runtime.run.main",
    }  # fmt: skip
