"""The ``mllife`` command.

Each module holds a group of subcommands: their arguments (``register``) beside what
they do (``cmd_*``).
"""

from __future__ import annotations

import argparse
import sys

from mllife._errors import MllifeError
from mllife.cli import _data, _lifecycle, _problems, _serving

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mllife", description="The ``mllife`` command.")
    parser.add_argument("--config", default=None, help="path to mllife.toml (default: nearest)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (_lifecycle, _problems, _serving, _data):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MllifeError as exc:
        print(f"mllife: error: {exc}", file=sys.stderr)
        return 2
