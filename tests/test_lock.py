"""requirements.lock and pyproject.toml agree: every declared dependency (all extras)
is locked at a version its range allows, Dagster and its libraries are one release, and
this environment runs the locked Dagster (the tests run on what a user installs)."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            assert pinned, f"requirements.lock: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = pinned
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        requirements += [Requirement(r) for r in extra]
    return [r for r in requirements if canonicalize_name(r.name) != "mllife"]


def test_every_declared_dependency_is_locked_within_its_range():
    locked = _locked()
    problems = []
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        if name not in locked:
            problems.append(f"{requirement} is not in requirements.lock")
        elif not requirement.specifier.contains(locked[name], prereleases=True):
            problems.append(f"{requirement}: locked at {locked[name]}, outside its range")
    assert not problems, "regenerate requirements.lock (see its header):\n" + "\n".join(problems)


def test_dagster_and_its_libraries_are_one_release_and_the_one_installed():
    locked = _locked()
    core = locked["dagster"]
    major, minor, patch = map(int, re.match(r"(\d+)\.(\d+)\.(\d+)", core).groups())
    library = f"0.{minor + 16}.{patch}"  # dagster 1.13.27 goes with its libraries 0.29.27
    for name in ("dagster-webserver", "dagster-graphql", "dagster-pipes", "dagster-shared"):
        assert locked[name] == core, f"{name} {locked[name]} vs dagster {core}"
    for name in ("dagster-postgres", "dagster-celery", "dagster-k8s"):
        assert locked[name] == library, f"{name} {locked[name]} vs dagster {core}"
    assert version("dagster") == core, (
        f"this environment has dagster {version('dagster')}, the lock {core}: install with"
        " pip install -c requirements.lock"
    )
