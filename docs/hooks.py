"""MkDocs hooks: pages generated from the code at build time, so they cannot drift.

``<!-- generated: cli -->`` becomes every command's ``--help`` (from the parser);
``<!-- generated: gates -->`` every promotion gate with what it asks (the gate registry);
``<!-- generated: policy -->`` every ``[promotion]`` setting with its default and what it
means (the configuration class and the comments above its fields).
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def on_page_markdown(markdown: str, page, config, files) -> str:
    generated = {"cli": _cli, "gates": _gates, "policy": _policy}
    for name, make in generated.items():
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


def _commands(parser: argparse.ArgumentParser, path: list[str]):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, [*path, name])


def _cli() -> str:
    from mllife.cli import build_parser

    parts = []
    for path, parser in _commands(build_parser(), ["mllife"]):
        out = io.StringIO()
        with redirect_stdout(out):
            parser.print_help()
        parts.append(f"## {' '.join(path)}\n\n```text\n{out.getvalue().rstrip()}\n```\n")
    return "\n".join(parts)


def _gates() -> str:
    from mllife.config.policy import PromotionConfig
    from mllife.promotion.policy import gate_descriptions

    policy = PromotionConfig(min_accuracy=0.9)  # one threshold gate shown as an example
    rows = [f"| `{name}` | {text} |" for name, text in gate_descriptions(policy).items()]
    return "| gate | what it asks |\n|---|---|\n" + "\n".join(rows) + "\n"


def _field_comments(path: Path, cls: str) -> dict[str, str]:
    """``#:`` comments above each field of ``cls`` in ``path``."""
    source = path.read_text().splitlines()
    tree = ast.parse("\n".join(source))
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    comments = {}
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            above, line = [], item.lineno - 2
            while line >= 0 and source[line].strip().startswith("#:"):
                above.insert(0, source[line].strip()[2:].strip())
                line -= 1
            comments[item.target.id] = " ".join(above)
    return comments


def _policy() -> str:
    from mllife.config.policy import RISK_DEFAULTS, PromotionConfig

    comments = _field_comments(ROOT / "mllife" / "config" / "policy.py", "PromotionConfig")
    rows = []
    for name, field in PromotionConfig.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if default is None and name in RISK_DEFAULTS["suggest"]:
            shown = ", ".join(f"{r}: `{v[name]}`" for r, v in RISK_DEFAULTS.items())
            default_text = f"by risk level ({shown})"
        else:
            default_text = f"`{default!r}`"
        rows.append(f"| `{name}` | {default_text} | {comments.get(name, '')} |")
    return "| setting | default | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n"
