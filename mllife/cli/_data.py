"""Commands for data and versions: lineage, checkout, push, pull, data (add, init)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mllife.config.project import load_config


def register(sub) -> None:
    """Add these commands to the ``mllife`` parser's subcommands."""
    lineage = sub.add_parser("lineage", help="data -> split -> model -> evaluation -> decision")
    lineage.add_argument("model", help="model hash (or a unique prefix of 6+ digits)")
    lineage.set_defaults(func=cmd_lineage)
    checkout = sub.add_parser("checkout", help="restore a recorded model's artifact from DVC")
    checkout.add_argument("model", help="model hash (or a unique prefix of 6+ digits)")
    checkout.add_argument("--remote", default=None, help="DVC remote (default: the default)")
    checkout.set_defaults(func=cmd_checkout)
    for name, text in (("push", "dvc push data and artifacts"), ("pull", "dvc pull them")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--remote", "-r", default=None, help="DVC remote name")
        command.set_defaults(func=cmd_push_pull)
    data = sub.add_parser("data", help="data commands")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    add = data_sub.add_parser("add", help="add files to data/ and version them with DVC")
    add.add_argument("paths", nargs="+", help="image files or <label>/ folders; or a table")
    add.add_argument(
        "--new-class",
        action="store_true",
        help="allow labels (folder names) that are not yet classes of the project",
    )
    add.set_defaults(func=cmd_data_add)
    init = data_sub.add_parser("init", help="write the embedded default data (digits)")
    init.set_defaults(func=cmd_data_init)


def cmd_lineage(args: argparse.Namespace) -> int:
    from mllife.promotion.lineage import lineage
    from mllife.storage.store import Store

    config = load_config(args.config)
    print("\n".join(lineage(Store(config.store_path), args.model).lines(
        artifacts_dir=config.artifacts_dir
    )))  # fmt: skip
    return 0


def cmd_checkout(args: argparse.Namespace) -> int:
    from mllife.models.checkout import checkout_model
    from mllife.storage.store import Store

    config = load_config(args.config)
    ref = checkout_model(config, Store(config.store_path), args.model, remote=args.remote)
    print(f"restored {ref.name} {ref.model_hash[:12]} at {ref.path(config.artifacts_dir)}")
    return 0


def cmd_push_pull(args: argparse.Namespace) -> int:
    from mllife.storage import artifacts

    config = load_config(args.config)
    action = artifacts.push if args.command == "push" else artifacts.pull
    out = action(config, remote=args.remote)
    print(out.strip() or f"{args.command}: done")
    return 0


def cmd_data_add(args: argparse.Namespace) -> int:
    from mllife.data.add import add_data

    config = load_config(args.config)
    result = add_data(config, [Path(p) for p in args.paths], new_classes=args.new_class)
    print(result.describe())
    return 0


def cmd_data_init(args: argparse.Namespace) -> int:
    from mllife.data.defaults import ensure_data

    config = load_config(args.config)
    if config.data_path.exists():
        print(f"{config.data_path} already exists; nothing written")
        return 0
    lines = ensure_data(config)
    if not lines:
        print(f"[data] default is 'none': nothing to write at {config.data_path}")
    print("\n".join(lines))
    return 0
