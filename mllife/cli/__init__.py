"""The ``mllife`` command.

Each module holds a group of subcommands: their arguments (``register``) beside what
they do (``cmd_*``).
"""

from __future__ import annotations

import argparse
import os
import sys

from mllife._errors import MllifeError
from mllife.cli import _data, _init, _lifecycle, _problems, _rollout, _serving, _team

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mllife",
        description="mllife: the ML lifecycle from raw data to a deployed champion."
        " Start with `mllife init` (your data) or `mllife run` (the demo).",
    )
    parser.add_argument("--config", default=None, help="path to mllife.toml (default: nearest)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (_init, _lifecycle, _rollout, _problems, _serving, _data, _team):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        try:
            return args.func(args)
        finally:
            sys.stdout.flush()  # here, so a reader that went away is noticed in the try
    except MllifeError as exc:
        print(f"mllife: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader stopped reading (`mllife status | head`): nothing went wrong here, so
        # no traceback; stdout goes to devnull so the exit flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
