"""Commands of the staged rollout: stage, withdraw (promote is `mllife promote`)."""

from __future__ import annotations

import argparse

from mllife.config.project import load_config


def register(sub) -> None:
    """Add these commands to the ``mllife`` parser's subcommands."""
    stage = sub.add_parser(
        "stage", help="serve a recorded model as the shadow or canary challenger, by hand"
    )
    stage.add_argument("model", help="model hash (or a unique prefix of 6+ digits)")
    stage.add_argument("--reason", required=True, help="why (recorded in the history)")
    stage.set_defaults(func=cmd_stage)
    withdraw = sub.add_parser("withdraw", help="end the staged challenger's rollout")
    withdraw.add_argument("--reason", required=True, help="why (recorded in the history)")
    withdraw.set_defaults(func=cmd_withdraw)


def cmd_stage(args: argparse.Namespace) -> int:
    from mllife._errors import PromotionError, StoreError
    from mllife.promotion.rollout import stage
    from mllife.storage.store import Store

    config = load_config(args.config)
    store = Store(config.store_path)
    try:
        row = store.resolve_model(args.model)
    except StoreError as exc:
        raise PromotionError(str(exc)) from None
    staged = stage(
        store, model_hash=row["model_hash"], name=row["name"], reason=f"manual: {args.reason}"
    )
    mode = config.serving.rollout.mode
    serving = (
        f"served as {mode} traffic"
        if mode != "off"
        else "not served yet: set [serving.rollout] mode = 'shadow' or 'canary'"
    )
    print(f"staged {staged.name} {staged.model_hash[:12]}: {serving}")
    return 0


def cmd_withdraw(args: argparse.Namespace) -> int:
    from mllife.promotion.rollout import withdraw
    from mllife.storage.store import Store

    config = load_config(args.config)
    staged = withdraw(Store(config.store_path), reason=f"manual: {args.reason}")
    print(f"withdrew {staged.name} {staged.model_hash[:12]}; the champion stays")
    return 0
