"""``mllife review``: the review desk in a terminal (the queue, label, add to a known
problem, skip), the same queue and actions as ``/review`` on ``mllife serve``."""

from __future__ import annotations

import argparse
import getpass
from datetime import date

from mllife.cli._table import print_table
from mllife.config.project import load_config


def register(sub) -> None:
    """Add these commands to the ``mllife`` parser's subcommands."""
    review = sub.add_parser("review", help="the review desk: served predictions that need a person")
    rsub = review.add_subparsers(dest="review_command", required=True)
    listing = rsub.add_parser("list", help="the queue, neediest first")
    listing.add_argument("--label", default=None, help="only this predicted class")
    listing.add_argument("--model", default=None, help="only this model (name or hash prefix)")
    listing.add_argument("--since", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    listing.add_argument("--until", type=date.fromisoformat, default=None, help="YYYY-MM-DD")
    listing.add_argument("--page", type=int, default=1, help="page of the queue (default 1)")
    show = rsub.add_parser("show", help="one item: its input, prediction and other answers")
    show.add_argument("prediction_id", help="an id /predict returned")
    label = rsub.add_parser("label", help="confirm or correct a prediction's label")
    label.add_argument("prediction_id", help="an id /predict returned")
    label.add_argument("label", help="the right label (one of the classes)")
    skip = rsub.add_parser("skip", help="take an item out of the queue")
    skip.add_argument("prediction_id", help="an id /predict returned")
    add = rsub.add_parser("add", help="add served inputs to a known problem as patterns")
    add.add_argument(
        "prediction_ids", nargs="+", metavar="prediction_id", help="ids /predict returned"
    )
    add.add_argument("--problem", required=True, help="an existing problem, or a new name")
    add.add_argument("--description", default=None, help="what goes wrong (a new problem)")
    add.add_argument("--expected", default=None, help="the right label (default: as predicted)")
    add.add_argument(
        "--kind", default="positive", choices=["positive", "negative"],
        help="positive: shows the problem; negative: looks alike but is fine",
    )  # fmt: skip
    for each in (label, skip, add):
        each.add_argument(
            "--reviewer", default=None, help="who reviews (default: cli:<your user name>)"
        )
    review.set_defaults(func=cmd_review)


def _desk(config):
    from mllife.cli._problems import _known_classes
    from mllife.monitoring.log_format import FEEDBACK_SCHEMA, REVIEW_SCHEMA
    from mllife.review.desk import ReviewDesk
    from mllife.serve._log import SegmentLog
    from mllife.storage.store import Store

    # written a segment per action, as the server writes them
    sizes = {"flush_rows": 1_000_000, "flush_seconds": 3600.0}
    folder = config.predictions_dir
    return ReviewDesk(
        config,
        Store(config.store_path),
        SegmentLog(folder, prefix="feedback", schema=FEEDBACK_SCHEMA, **sizes),
        SegmentLog(folder, prefix="review", schema=REVIEW_SCHEMA, **sizes),
        [str(c) for c in _known_classes(config)],
    )


def cmd_review(args: argparse.Namespace) -> int:
    import polars as pl

    from mllife.review.queue import QueueFilter, review_queue

    config = load_config(args.config)
    desk = _desk(config)
    action = args.review_command
    reviewer = getattr(args, "reviewer", None) or f"cli:{getpass.getuser()}"
    if action == "list":
        filters = QueueFilter(args.label, args.model, args.since, args.until)
        page = review_queue(config, desk.store, filters=filters, page=args.page)
        rows = [
            {"prediction": i.prediction_id, "predicted": i.predicted,
             "confidence": round(i.confidence, 3), "model": f"{i.model_name} {i.model_hash[:12]}",
             "need": round(i.need, 3), "why": "; ".join(i.reasons)}
            for i in page.items
        ]  # fmt: skip
        print_table(pl.DataFrame(rows), empty="nothing waits for review")
        print(f"page {page.page} of {page.pages}; {page.total} waiting")
        return 0
    ids = [args.prediction_id] if hasattr(args, "prediction_id") else args.prediction_ids
    items = desk.items(ids)
    if action == "show":
        (item,) = items
        print(
            f"{item.prediction_id}: {item.predicted} at {item.confidence:.3f} by"
            f" {item.model_name} {item.model_hash[:12]} ({item.role}); {'; '.join(item.reasons)}"
        )
        if item.features is not None:
            print_table(pl.DataFrame([item.features]))
        else:
            where = config.served_inputs_dir / item.input_hash[:2] / item.input_hash
            print(f"input: {where}" if item.kept else "input: not kept ([review] limits)")
        print_table(pl.DataFrame(item.others), empty="no other predictions of this input")
    elif action == "label":
        desk.label(items[0], args.label, reviewer=reviewer)
        print(f"labelled {args.prediction_id} as {args.label!r}")
    elif action == "skip":
        desk.skip(items[0], reviewer=reviewer)
        print(f"skipped {args.prediction_id}")
    elif action == "add":
        labels = {i.prediction_id: args.expected or i.predicted for i in items}
        added = desk.add_to_problem(
            items, problem=args.problem, labels=labels, kind=args.kind, reviewer=reviewer,
            description=args.description,
        )  # fmt: skip
        already = f"; {len(items) - added} already in it" if added < len(items) else ""
        print(
            f"added {added} pattern(s) to {args.problem!r} (problems/{args.problem}/){already};"
            " the next `mllife run` scores every model version on them"
        )
    return 0
