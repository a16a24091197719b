"""The documentation: a README that stays short and points into docs/, a site that builds
with warnings as errors (its CLI reference, gate table and API reference generated from
the code), and the getting-started commands run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import REPO, copy_project

DOCS = REPO / "docs"


def test_the_readme_is_short_and_its_links_lead_somewhere():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert {"docs/getting-started.md", "docs/promotion.md", "docs/cli.md"} <= set(links)
    assert [link for link in links if not (REPO / link).exists()] == []


def test_the_site_builds_strictly_with_its_generated_pages(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (site / "cli" / "index.html").read_text()
    from mllife.cli import build_parser

    for action in build_parser()._actions:  # every command has its section
        for name in getattr(action, "choices", None) or {}:
            assert f"mllife {name}" in cli, name
    from mllife.config.policy import PromotionConfig
    from mllife.promotion.policy import gate_names

    policy = (site / "promotion" / "index.html").read_text()
    for gate in gate_names(PromotionConfig(min_accuracy=0.9)):
        assert f"<code>{gate}</code>" in policy, gate
    for setting in PromotionConfig.model_fields:
        assert f"<code>{setting}</code>" in policy, setting
    library = (site / "library" / "index.html").read_text()
    assert "mllife.evaluate" in library and "y_true" in library  # from the docstring


def test_the_getting_started_commands_run_as_written(tmp_path, deployed_digits):
    """Every line of the blocks marked ``<!-- docs-test: run -->`` on the getting-started
    page, in a copy of a deployed project (a first run from scratch is what CI's README
    command already does)."""
    page = (DOCS / "getting-started.md").read_text()
    blocks = re.findall(r"<!-- docs-test: run -->\n```bash\n(.*?)```", page, re.DOTALL)
    commands = [line.split(" #")[0].strip() for b in blocks for line in b.splitlines()]
    commands = [c for c in commands if c]
    assert len(commands) >= 5
    project = copy_project(deployed_digits[0], tmp_path / "p").parent
    for command in commands:
        assert command.startswith("mllife "), command
        argv = [sys.executable, "-m", "mllife.cli", *command.split()[1:]]
        done = subprocess.run(argv, cwd=project, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
        assert "Traceback" not in done.stderr, command
