"""Commands of the model server: serve, keys."""

from __future__ import annotations

import argparse
import sys

from mllife.cli._table import port
from mllife.config.project import load_config


def register(sub) -> None:
    """Add these commands to the ``mllife`` parser's subcommands."""
    serve = sub.add_parser("serve", help="serve the champion over HTTP")
    serve.add_argument("--host", default=None, help="default: serving.host (127.0.0.1)")
    serve.add_argument("--port", type=port, default=None, help="default: serving.port (8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes on the one port (default: serving.workers, 1)",
    )
    serve.set_defaults(func=cmd_serve)
    keys = sub.add_parser("keys", help="API keys for the server")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kcreate = ksub.add_parser("create", help="create a key (printed once)")
    kcreate.add_argument("--name", required=True, help="who or what uses the key (unique)")
    kcreate.add_argument(
        "--routes",
        nargs="+",
        default=["predict", "feedback", "model"],
        choices=["predict", "feedback", "model", "feedback_any", "review"],
        help="what the key may call (default: predict feedback model); feedback: label"
        " the key's own predictions; feedback_any: any key's; review: the review desk"
        " (/review: every served input of the models the key may use)",
    )
    kcreate.add_argument(
        "--models", nargs="+", default=["*"], help="candidate names it may use, or *"
    )
    ksub.add_parser("list", help="active keys (names and permissions)")
    krevoke = ksub.add_parser("revoke", help="revoke a key")
    krevoke.add_argument("name", help="the key's name")
    keys.set_defaults(func=cmd_keys)


def cmd_serve(args: argparse.Namespace) -> int:
    from mllife.serve import run_server

    if args.workers is not None and args.workers < 1:
        print("mllife serve: --workers must be 1 or more", file=sys.stderr)
        return 2
    run_server(load_config(args.config), host=args.host, port=args.port, workers=args.workers)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from mllife.serve import keys
    from mllife.storage.store import Store

    store = Store(load_config(args.config).store_path)
    if args.keys_command == "create":
        token = keys.create_key(
            store, args.name, routes=tuple(args.routes), models=tuple(args.models)
        )
        print(token)
        print(
            f"key {args.name!r} created (routes {args.routes}, models {args.models});"
            " it is shown only now: store it safely",
            file=sys.stderr,
        )
    elif args.keys_command == "list":
        active = keys.list_keys(store)
        if not active:
            print("no active keys: create one with `mllife keys create --name NAME`")
        for key in active:
            print(f"{key.name}\troutes={sorted(key.routes)}\tmodels={sorted(key.models)}")
    else:
        keys.revoke_key(store, args.name)
        print(f"key {args.name!r} revoked")
    return 0
