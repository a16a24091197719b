"""``mllife init``: a project of one's own, made from one's data."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(sub) -> None:
    """Add this command to the ``mllife`` parser's subcommands."""
    init = sub.add_parser(
        "init",
        help="create a project from an image folder, a table or labelled texts",
        description="Create a project in DIR (default: here) from your data: mllife.toml"
        " filled from the data, workspace.yaml, .gitignore, git and DVC, the data pinned by"
        " DVC, an empty problems/ folder. Refuses to overwrite an existing project.",
    )
    init.add_argument("dir", nargs="?", default=".", help="the project folder (default: .)")
    source = init.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images", metavar="FOLDER", help="a folder with one subfolder of images per class"
    )
    source.add_argument("--table", metavar="FILE", help="a .csv or .parquet file")
    source.add_argument(
        "--text",
        metavar="FILE|FOLDER",
        help="labelled texts: a .csv, .jsonl or .parquet file with a text column, or a folder"
        " with one subfolder of .txt files per class",
    )
    init.add_argument("--target", metavar="COLUMN", help="the table's label column")
    init.add_argument("--id", metavar="COLUMN", help="the table's row id column (optional)")
    init.add_argument(
        "--text-column", metavar="COLUMN", help="--text: the column of texts (default: found)"
    )
    init.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from mllife.scaffold import ImageSurvey, TextSurvey, init_project

    done = init_project(
        Path(args.dir),
        images=Path(args.images) if args.images else None,
        table=Path(args.table) if args.table else None,
        text=Path(args.text) if args.text else None,
        target=args.target,
        id=args.id,
        text_column=args.text_column,
    )
    survey = done.survey
    if isinstance(survey, ImageSurvey):
        counts = ", ".join(f"{k} {v}" for k, v in survey.classes.items())
        print(f"{survey.n_images} images in {len(survey.classes)} classes: {counts}")
    elif isinstance(survey, TextSurvey):
        counts = ", ".join(f"{k} {v}" for k, v in list(survey.classes.items())[:10])
        print(
            f"{survey.n_rows} texts in column {survey.text!r} (median {survey.median_chars}"
            f" characters, {survey.markup} with HTML markup, removed in training and"
            f" serving); target {survey.target!r}: {counts}"
        )
    else:
        shown = list(survey.classes.items())[:10]
        more = f" and {len(survey.classes) - 10} more" if len(survey.classes) > 10 else ""
        counts = ", ".join(f"{k} {v}" for k, v in shown) + more
        print(f"{survey.n_rows} rows; target {survey.target!r}: {counts}")
        for finding in survey.contract.findings:
            print(f"  note: {finding.describe()}")
        texts = [n for n, c in survey.contract.columns.items() if c.dtype == "text"]
        if texts and len(survey.contract.columns) == 1:
            print(
                f"  note: the only feature, {texts[0]!r}, is free text: `mllife init --text"
                f" {args.table} --target {survey.target}` makes a text project (n-grams and"
                " a pretrained sentence encoder) instead"
            )
    for step in done.steps:
        print(f"  {step}")
    print(f"project created in {done.root} ({done.seconds:.1f} s)")
    where = os.path.relpath(done.root)
    steps = [
        ("mllife run", "train, evaluate and deploy a champion (prints a summary)"),
        ("mllife ui", "the Dagster UI: runs, assets, checks, lineage"),
        ("mllife schema show", "the data contract every run checks"),
        ("mllife problems add", "record a known problem (see problems/README.md)"),
        ("mllife keys create", "an API key, then `mllife serve` serves the champion"),
        ("git add . && git commit", "keep the configuration and the data pins"),
    ]
    print("\nwhat next" + ("" if where == "." else f" (cd {where})") + ":")
    for command, what in steps:
        print(f"  {command:<25} {what}")
    return 0
