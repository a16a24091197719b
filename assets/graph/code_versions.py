"""Each asset's code version: the source of the modules its step actually runs (its own
module and every ``mllife``/``assets`` module reachable through its imports, lazy ones
included) and the configuration it reads. Editing the server leaves training up to date;
editing a candidate's spec makes that candidate (and what depends on it) stale, not the
others; editing ``[promotion]`` makes the challenger stale, not the models."""

from __future__ import annotations

import hashlib
import inspect
import re
from functools import cache
from pathlib import Path

import dagster as dg

from mllife.data.derived import derived_features

ROOT = Path(__file__).resolve().parents[2]  # the repository: assets/graph/ is two down
_OWN = ("mllife", "assets")


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# Import statements read as text: parsing every module into an AST cost 0.2-0.4 s of
# each graph load (the code server, the run worker, each step process); these give the
# same modules on every file of the project (a test holds them to the AST's answer).
# A match inside a string at most adds a module: a more cautious code version.
_FROM = re.compile(
    r"^[ \t]*from[ \t]+((?:mllife|assets)(?:\.\w+)*)[ \t]+import[ \t]+(\([^)]*\)|(?:.*\\\n)*.*)",
    re.MULTILINE,
)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+((?:.*\\\n)*.*)", re.MULTILINE)


def _names(items: str) -> list[str]:
    """``a as b, c`` (parenthesized or continued) -> ``["a", "c"]``."""
    text = items
    for symbol in ("\\\n", "(", ")"):
        text = text.replace(symbol, " ")
    return [item.split()[0] for item in text.split(",") if item.strip()]


def imported_names(source: str) -> list[str]:
    """The absolute module names (and ``module.name`` of from-imports) ``source`` imports
    from ``mllife`` or ``assets``, lazy imports inside functions included."""
    source = re.sub(r"#.*", "", source)  # comments (a ")" in one ends no import)
    names = []
    for match in _FROM.finditer(source):
        module = match[1]
        names += [module, *(f"{module}.{name}" for name in _names(match[2]))]
    for match in _IMPORT.finditer(source):
        names += _names(match[1])
    return [name for name in names if name.split(".")[0] in _OWN]


@cache
def _imports(path: Path) -> frozenset[Path]:
    names = imported_names(path.read_text())
    return frozenset(file for name in names if (file := _module_file(name)) is not None)


def module_closure(path: Path) -> list[Path]:
    """``path`` and every project module it reaches through imports, sorted."""
    seen, todo = set(), [Path(path).resolve()]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += _imports(current) - seen
    return sorted(seen)


def _sections(name: str, config) -> list[str]:
    """The configuration an asset reads, as JSON texts."""

    def dump(*parts) -> list[str]:
        texts = [p.model_dump_json() for p in parts]
        if config.data in parts and (derived := derived_features(config)) is not None:
            texts.append(f"derive={derived.fingerprint}")  # the function's source
        if config.split in parts and config.split.group_manifest:  # the groups it lists
            manifest = config.root / config.split.group_manifest
            content = manifest.read_bytes() if manifest.is_file() else b""
            texts.append(f"groups={hashlib.sha256(content).hexdigest()}")
        return texts

    if name.startswith("candidate_"):
        return dump(config.candidate(name.removeprefix("candidate_")), config.training, config.data)
    if name.startswith("evaluation_"):
        # of the policy, evaluation reads only the val/test tolerance and the read budget
        gap = config.promotion.setting("max_val_test_gap")
        return [*dump(config.data), f"{gap}:{config.promotion.max_test_reads}"]
    if name == "clean_data" and config.cleaning.drop_label_issues:
        # what cleaning drops changes; turning the (reported) search on does not
        return [*dump(config.data), "drop_label_issues"]
    table = {
        "raw_data": (config.data,),
        "clean_data": (config.data,),
        "splits": (config.data, config.split),
        "label_issues": (config.data, config.split),
        "staleness_backtest": (config.data, config.split),
        "problem_scores": (config.data,),
        "challenger": (config.data, config.promotion, config.fairness),
        "champion": (config.promotion, config.serving),
        "staged_rollout": (config.serving,),
        "drift_report": (config.monitoring,),
        "served_predictions": (config.serving,),
        "artifact_versions": (config.versioning,),
    }
    # the report says everything: the whole file
    return dump(*table[name]) if name in table else [config.path.read_text()]


@cache
def _code_digest(module: Path):
    digest = hashlib.sha256()
    for file in module_closure(module):
        digest.update(file.relative_to(ROOT).as_posix().encode() + b"\0" + file.read_bytes())
    return digest


def code_version(name: str, module: Path, config) -> str:
    """The code version of asset ``name`` computed in ``module``."""
    digest = _code_digest(Path(module).resolve()).copy()
    for text in _sections(name, config):
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def with_code_version(asset: dg.AssetsDefinition, config):
    """A ``map_asset_specs`` function giving the asset its code version."""
    module = Path(inspect.getsourcefile(asset.op.compute_fn.decorated_fn))

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(
            code_version=code_version(spec.key.to_user_string(), module, config)
        )

    return apply


#: the module that computes each lifecycle asset (a test holds it to the definitions):
#: what lets `mllife run` tell an up-to-date project without importing the graph
_MODULES = {
    "raw_data": "data", "clean_data": "data", "splits": "data",
    "served_predictions": "monitoring", "drift_report": "monitoring",
    "problem_scores": "problems", "challenger": "deployment", "champion": "deployment",
    "staged_rollout": "rollout", "status_report": "reports",
    "artifact_versions": "versioning",
}  # fmt: skip


def expected_code_versions(config) -> dict[str, str]:
    """Every lifecycle asset's code version for ``config``, from the files alone."""
    names = {name: module for name, module in _MODULES.items()}
    if config.cleaning.label_issues:
        names["label_issues"] = "data"
    if config.data.time:
        names["staleness_backtest"] = "evaluation"
    for spec in config.models_to_train:
        names[f"candidate_{spec.name}"] = "training"
        names[f"evaluation_{spec.name}"] = "evaluation"
    return {
        name: code_version(name, ROOT / "assets" / "graph" / f"{module}.py", config)
        for name, module in names.items()
    }
