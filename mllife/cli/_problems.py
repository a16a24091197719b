"""Commands of the known-problems registry: problems, patterns."""

from __future__ import annotations

import argparse

from mllife._errors import MllifeError
from mllife.cli._table import print_table
from mllife.config.project import load_config


def register(sub) -> None:
    """Add these commands to the ``mllife`` parser's subcommands."""
    problems = sub.add_parser("problems", help="the known-problems registry")
    psub = problems.add_subparsers(dest="problems_command", required=True)
    add = psub.add_parser("add", help="register a problem a client reported")
    add.add_argument("name", help="a short name: lowercase letters, digits, _")
    add.add_argument(
        "--description",
        default=None,
        help="what goes wrong, in a sentence (required unless --from-slice)",
    )
    add.add_argument(
        "--from-slice",
        type=int,
        default=None,
        metavar="N",
        help="slice N of the latest run (`mllife slices`): its rows become the patterns",
    )
    add.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="accuracy on its patterns a challenger must reach",
    )
    psub.add_parser("list", help="problems with their pattern counts")
    sub.add_parser(
        "slices", help="weak spots of the latest run's challenger (slice discovery)"
    ).set_defaults(func=cmd_slices)
    show = psub.add_parser("show", help="a problem's patterns, to inspect by hand")
    show.add_argument("name", help="the problem")
    remove = psub.add_parser("remove", help="remove a problem and its patterns")
    remove.add_argument("name", help="the problem")
    remove.add_argument("--force", action="store_true", help="even if it has results")
    history = psub.add_parser("history", help="per-problem scores by model version")
    history.add_argument("name", nargs="?", default=None, help="one problem (default: all)")
    history.add_argument("--chart", default=None, help="also write a PNG chart here")
    flips = psub.add_parser("flips", help="patterns that flipped between two model versions")
    flips.add_argument("name", help="the problem")
    flips.add_argument("model_a", help="model hash (or a unique prefix)")
    flips.add_argument("model_b", help="model hash (or a unique prefix)")
    imp = psub.add_parser("import", help="bulk import: a folder <label>/<image> or a CSV")
    imp.add_argument("name", help="the problem (created first with `problems add`)")
    imp.add_argument("path", help="a folder <label>/<image>, or a CSV of patterns")
    imp.add_argument(
        "--kind",
        default="positive",
        choices=["positive", "negative"],
        help="positive: shows the problem; negative: looks alike but is fine (folders)",
    )
    imp.add_argument(
        "--source",
        "--origin",  # its name before 0.2, kept so old scripts work
        dest="source",
        default="production",
        choices=["production", "contrived"],
        help="where folder patterns come from: served traffic, or made up (CSV rows say it"
        " in their own column)",
    )
    problems.set_defaults(func=cmd_problems)
    patterns = sub.add_parser("patterns", help="patterns of known problems")
    patsub = patterns.add_subparsers(dest="patterns_command", required=True)
    padd = patsub.add_parser("add", help="add one pattern to a problem")
    padd.add_argument("problem", help="the problem")
    padd.add_argument("--input", required=True, help="an image file, or a JSON row")
    padd.add_argument("--expected", required=True, help="the right label")
    padd.add_argument(
        "--kind",
        required=True,
        choices=["positive", "negative"],
        help="positive: shows the problem; negative: looks alike but is fine",
    )
    padd.add_argument(
        "--source",
        required=True,
        choices=["production", "contrived"],
        help="from served traffic, or made up",
    )
    patterns.set_defaults(func=cmd_patterns)


def _known_classes(config) -> list[str]:
    """Classes a pattern's expected label must be among: declared, or read off the data."""
    if config.data.classes:
        return list(config.data.classes)
    if config.data.kind == "images":
        from mllife.data.images import infer_classes

        return list(infer_classes(config.data_path))
    from mllife.data.tables import read_table

    table = read_table(config.data_path)
    return sorted(table[config.data.target].cast(str).drop_nulls().unique().to_list())


def _registry(args: argparse.Namespace):
    from mllife.problems.registry import ProblemRegistry
    from mllife.storage.store import Store

    config = load_config(args.config)
    return config, ProblemRegistry(config, Store(config.store_path))


def cmd_problems(args: argparse.Namespace) -> int:
    config, registry = _registry(args)
    action = args.problems_command
    if action == "add" and args.from_slice is not None:
        return _add_from_slice(config, registry, args)
    if action == "add":
        if not args.description:
            raise MllifeError("problems add: give --description (or --from-slice N)")
        registry.add_problem(args.name, description=args.description, min_score=args.min_score)
        print(f"added problem {args.name!r}; add 10-15 patterns with `mllife patterns add`")
    elif action == "list":
        print_table(
            registry.problems(),
            empty="no known problems yet: `mllife problems add NAME --description TEXT`",
        )
    elif action == "show":
        patterns = registry.patterns(args.name)
        print_table(
            patterns.with_columns(patterns["pattern_hash"].str.slice(0, 12)).drop("input_path"),
            empty=f"problem {args.name!r} has no patterns yet: `mllife patterns add`",
            headers={"pattern_hash": "pattern"},
        )
    elif action == "remove":
        removed = registry.remove(args.name, force=args.force)
        print(f"removed problem {args.name!r} and its {removed} patterns")
    elif action == "history":
        history = registry.history(args.name)
        if history.height == 0:
            which = f"problem {args.name!r}" if args.name else "any problem"
            print(f"no results for {which} yet: `mllife run` scores every model version on it")
            return 0
        print_table(
            history.with_columns(history["model_hash"].str.slice(0, 12)),
            empty="no results yet",
            headers={"model_hash": "model"},
        )
        if args.chart:
            from mllife.reporting.plots import problem_history_png

            chart = problem_history_png(history)
            if chart is None:
                print("no results yet: run `mllife run` to score the models")
            else:
                with open(args.chart, "wb") as handle:
                    handle.write(chart)
                print(f"chart written to {args.chart}")
    elif action == "flips":
        print_table(
            registry.flips(args.name, args.model_a, args.model_b),
            empty=f"no pattern of {args.name!r} changed its answer between the two models",
        )
    elif action == "import":
        from pathlib import Path

        path = Path(args.path)
        classes = _known_classes(config)
        if path.is_dir():
            added = registry.import_folder(
                args.name, path, kind=args.kind, source=args.source, classes=classes
            )
        else:
            added = registry.import_csv(args.name, path, classes=classes)
        print(f"imported {added} patterns into {args.name!r}")
    return 0


def cmd_patterns(args: argparse.Namespace) -> int:
    config, registry = _registry(args)
    digest = registry.add_pattern(
        args.problem,
        input=args.input,
        expected=args.expected,
        kind=args.kind,
        source=args.source,
        classes=_known_classes(config),
    )
    print(f"added pattern {digest[:12]} to {args.problem!r}")
    return 0


def _add_from_slice(config, registry, args: argparse.Namespace) -> int:
    from mllife.review.from_slice import problem_from_slice

    added, left_out, rule = problem_from_slice(
        config, registry.store, number=args.from_slice, name=args.name,
        classes=[str(c) for c in _known_classes(config)], description=args.description,
    )  # fmt: skip
    print(
        f"problem {args.name!r}: {added} pattern(s) from slice {args.from_slice} ({rule})"
        f" in {config.problems_dir / args.name / 'problem.toml'}"
        + (f"; {left_out} row(s) left out (gone from the data, or a missing value)"
           if left_out else "")
        + "; the next `mllife run` scores every model version on it"
    )  # fmt: skip
    return 0


def cmd_slices(args: argparse.Namespace) -> int:
    from mllife.evaluation.slices import latest_slices
    from mllife.storage.store import Store

    config = load_config(args.config)
    found = latest_slices(Store(config.store_path))
    if found.height == 0:
        print(
            "no weak slice recorded: every `mllife run` searches its challenger's validation"
            " rows, and none has found a slice worse than the rest beyond chance yet"
        )
        return 0
    print(f"run {found['run_id'][0]}, challenger {found['model_hash'][0][:12]}:")
    print_table(
        found.select(
            "number", "description", "size", "accuracy", "low", "high", "rest_accuracy",
            "p_value",
        ),
        empty="",
        headers={"number": "#", "description": "slice", "size": "rows",
                 "rest_accuracy": "rest", "p_value": "adjusted p"},
    )  # fmt: skip
    print("keep one as a known problem: `mllife problems add NAME --from-slice N`")
    return 0
