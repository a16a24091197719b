"""Commands for data and versions: lineage, checkout, push, pull, data (add, init),
schema (show, freeze)."""

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
    schema = sub.add_parser("schema", help="the data's contract: show it in words, or freeze it")
    schema_sub = schema.add_subparsers(dest="schema_command", required=True)
    schema_sub.add_parser("show", help="the contract the next run checks, and any doubts")
    schema_sub.add_parser("freeze", help="write an inferred table contract to the schema file now")
    schema.set_defaults(func=cmd_schema)


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


def cmd_schema(args: argparse.Namespace) -> int:
    from mllife.data.contract_file import describe_columns, freeze_contract, load_contract

    config = load_config(args.config)
    data = config.data
    if data.kind == "images":
        from mllife.data.images import infer_classes

        classes = list(data.classes) or list(infer_classes(config.data_path))
        where = "declared in mllife.toml" if data.classes else "the class folders found"
        print(f"images in {config.data_path}, one subfolder per class ({where}):")
        print(f"  classes: {', '.join(classes)}")
        channels = {1: "grayscale", 3: "colour"}.get(data.channels, "colour if any is")
        print(
            f"  each image becomes {data.image_size} x {data.image_size} ({data.resize}),"
            f" {channels}; larger than {data.max_image_pixels:,} pixels is refused"
        )
        if args.schema_command == "freeze":
            print("(an image folder has no column contract to freeze)")
        return 0
    from mllife.data.tables import read_table

    frame = None if data.columns or config.schema_path.is_file() else read_table(config.data_path)
    contract = load_contract(frame, data, config.schema_path)
    if args.schema_command == "freeze":
        if contract.frozen:
            print(f"already frozen ({contract.origin}); edit it there, or delete it to infer again")
            return 0
        freeze_contract(contract, config.schema_path)
        print(f"froze the contract into {config.schema_path}:")
    else:
        print(f"contract of {config.data_path} ({contract.origin}):")
    for line in describe_columns(contract.columns):
        print(f"  {line}")
    print(f"  target {data.target!r}" + (f", row id {data.id!r}" if data.id else ""))
    if contract.findings and args.schema_command == "show":
        print("doubts (the contract is frozen once you decide):")
        for finding in contract.findings:
            print(f"  - {finding.describe()}")
    return 0
