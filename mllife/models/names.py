"""Every name ``mllife.toml`` gives the model stage, checked before anything runs, with
"did you mean" suggestions: estimator import paths, architectures, the user's own
``nn.Module`` paths. Without importing torch or scikit-learn: a module is found by
``importlib.util.find_spec`` and the names it defines or exports are read from its source
(classes, functions, imports, ``__all__``), so a whole project is checked in well under a
second; only a name the source does not show is confirmed by importing the module. A
misspelled estimator used to fail a minute into the run, once per trial, inside Dagster
stack traces."""

from __future__ import annotations

import ast
import difflib
import functools
import importlib
import importlib.util
import re
from pathlib import Path

from mllife._errors import ConfigError

__all__ = ["BUILT_IN_ARCHITECTURES", "check_model_names", "torchvision_architectures"]

#: the networks built in (mllife.models.networks.BUILT_IN; a test holds the two together)
BUILT_IN_ARCHITECTURES = ("small_cnn", "mlp", "resnet18")
DEFAULT_EMBEDDING_ESTIMATOR = "sklearn.linear_model.LogisticRegression"


def check_model_names(candidates) -> None:
    """Raise one :class:`ConfigError` listing every unknown name among ``candidates``
    (``CandidateConfig``), each with the closest known names."""
    problems = []
    for i, c in enumerate(candidates):
        where = f"candidates[{i}] ({c.name!r})"
        pretrained = c.kind in ("embedding", "text_encoder")
        estimator = c.estimator or (DEFAULT_EMBEDDING_ESTIMATOR if pretrained else None)
        if estimator and c.kind in ("sklearn", "embedding", "text_encoder"):
            if why := _unknown_path(estimator, "estimator"):
                problems.append(f"{where}.estimator: {why}")
        if c.module:
            if why := _unknown_path(c.module, "module"):
                problems.append(f"{where}.module: {why}")
        elif c.architecture and c.kind in ("torch", "embedding"):
            if why := _unknown_architecture(c.architecture):
                problems.append(f"{where}.architecture: {why}")
    if problems:
        raise ConfigError("mllife.toml names what does not exist:\n  " + "\n  ".join(problems))


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _unknown_path(path: str, what: str) -> str | None:
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        return f"{path!r} is not an import path like 'package.module.Class'"
    origin = _locate(module_name)
    if origin is None:
        parent, _, leaf = module_name.rpartition(".")
        siblings = _submodules(parent) if parent else ()
        return f"no module {module_name!r} (in {path!r}){_suggest(leaf, siblings)}"
    names = _defined_names(str(origin))
    if attribute in names:
        return None
    if "__all__" in names and "__getattr__" not in names:
        # the module lists what it exports and makes no names on demand: missing
        return f"module {module_name!r} has no {attribute!r}{_suggest(attribute, names)}"
    # the source does not show it (made at import time): import to be sure
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # its own code failed: that is the finding
        return f"module {module_name!r} cannot be imported: {type(exc).__name__}: {exc}"
    if hasattr(module, attribute):
        return None
    known = names | {n for n in dir(module) if not n.startswith("_")}
    return f"module {module_name!r} has no {attribute!r}{_suggest(attribute, known)}"


def _search_path(module_name: str) -> list[Path] | None:
    """The folders of package ``module_name``, found without importing it or its
    parents (``find_spec`` of a submodule imports the parents: a second for sklearn)."""
    top, *rest = module_name.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folders = [Path(p) for p in spec.submodule_search_locations]
    for part in rest:
        folders = [f / part for f in folders if (f / part / "__init__.py").is_file()]
        if not folders:
            return None
    return folders


def _locate(module_name: str) -> Path | None:
    """The file of ``module_name`` (its ``__init__.py`` for a package), or None."""
    parent, _, leaf = module_name.rpartition(".")
    if not parent:
        try:
            spec = importlib.util.find_spec(leaf)
        except (ImportError, ValueError):
            return None
        return None if spec is None else Path(spec.origin or leaf)
    for folder in _search_path(parent) or []:
        for candidate in (folder / leaf / "__init__.py", folder / f"{leaf}.py"):
            if candidate.is_file():
                return candidate
        compiled = sorted(folder.glob(f"{leaf}.*.so"))
        if compiled:
            return compiled[0]
    return None


def _submodules(package: str) -> tuple[str, ...]:
    import pkgutil

    folders = _search_path(package)
    return tuple(m.name for m in pkgutil.iter_modules([str(f) for f in folders or []]))


@functools.lru_cache(maxsize=64)
def _defined_names(origin: str | None) -> frozenset[str]:
    """Names a module's source defines or imports at its top level, and its __all__."""
    if not origin or not origin.endswith(".py"):
        return frozenset()
    tree = ast.parse(Path(origin).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
                    if target.id == "__all__" and isinstance(node.value, (ast.List, ast.Tuple)):
                        names.update(
                            e.value for e in node.value.elts if isinstance(e, ast.Constant)
                        )
    return frozenset(names)


_REGISTERED = re.compile(r"@register_model\([^)]*\)\s*(?:@[^\n]*\n\s*)*def\s+(\w+)")


@functools.lru_cache(maxsize=1)
def torchvision_architectures() -> frozenset[str]:
    """torchvision's classification models, read from its source (its ``register_model``
    decorator), not by importing it (seconds)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    # the classification models sit at the top of torchvision.models (not detection etc.)
    return frozenset(
        name for path in models.glob("*.py") for name in _REGISTERED.findall(path.read_text())
    )


def _unknown_architecture(architecture: str) -> str | None:
    if architecture.startswith("timm:"):
        if importlib.util.find_spec("timm") is None:
            return f"{architecture!r} needs timm: `pip install timm` in this environment"
        return None  # timm's own registry is checked when the network is built
    known = set(BUILT_IN_ARCHITECTURES) | torchvision_architectures()
    if architecture in known:
        return None
    return (
        f"unknown architecture {architecture!r}: not built in"
        f" ({', '.join(BUILT_IN_ARCHITECTURES)}) nor a torchvision classification model"
        f"{_suggest(architecture, known)}"
    )
