"""The ``mllife`` command.

Each module holds a group of subcommands: their arguments (``register``) beside what
they do (``cmd_*``).
"""

from __future__ import annotations

import argparse
import os
import sys

from mllife._errors import MllifeError
from mllife.cli import (
    _data,
    _explain,
    _init,
    _lifecycle,
    _problems,
    _review,
    _rollout,
    _serving,
    _team,
    _ui,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mllife",
        description="mllife: the ML lifecycle from raw data to a deployed champion."
        " Start with `mllife init` (your data) or `mllife run` (the demo).",
    )
    parser.add_argument("--config", default=None, help="path to mllife.toml (default: nearest)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser = sub.add_parser

    def described(name, **kwargs):
        # `mllife <command> --help` opens with the line `mllife --help` lists it with
        kwargs.setdefault("description", kwargs.get("help"))
        return add_parser(name, **kwargs)

    sub.add_parser = described
    for group in (
        _init,
        _lifecycle,
        _ui,
        _rollout,
        _problems,
        _explain,
        _review,
        _serving,
        _data,
        _team,
    ):
        group.register(sub)
    return parser


def _unknown_options(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """An option the chosen command does not take, with the closest it does ("--tabel":
    did you mean --table?). argparse would first complain about a required option the
    misspelling was meant to be, without naming the misspelling."""
    import difflib

    known, command = set(parser._option_string_actions), None
    current = parser
    for token in argv:  # down the chain of commands: `mllife keys create --name`
        commands = next(
            (a.choices for a in current._actions if isinstance(a, argparse._SubParsersAction)),
            {},
        )
        if token in commands:
            current = command = commands[token]
            known |= set(command._option_string_actions)
    if command is None:
        return None
    for token in argv:
        if token == "--":
            break
        option = token.split("=", 1)[0]
        abbreviates = any(k.startswith(option) for k in known)  # argparse takes prefixes
        if option.startswith("--") and option not in known and not abbreviates:
            close = difflib.get_close_matches(option, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; see `{command.prog} --help`"
            return f"{command.prog}: unknown option {option}{hint}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if unknown := _unknown_options(parser, argv):
        print(f"mllife: error: {unknown}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
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
