"""The ``mllife`` command."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from mllife._errors import MllifeError
from mllife.config import load_config

__all__ = ["main"]


def _orchestrate(args: argparse.Namespace, module: str, *extra: str) -> int:
    """Run an ``assets`` entry point in a child process: the library never imports Dagster."""
    config = load_config(args.config)
    command = [sys.executable, "-m", module, "--config", str(config.path), *extra]
    return subprocess.call(command, cwd=config.root)


def cmd_run(args: argparse.Namespace) -> int:
    extra = ["--job", args.job, "--executor", args.executor]
    if args.resume is not None:
        extra += ["--resume", args.resume]
    return _orchestrate(args, "assets.run", *extra)


def cmd_ui(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    config.dagster_home.mkdir(parents=True, exist_ok=True)
    settings = config.dagster_home / "dagster.yaml"
    if not settings.exists():
        settings.write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(config.dagster_home),
        "MLLIFE_CONFIG": str(config.path),
    }
    command = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(config.root / "workspace.yaml"),
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    return subprocess.call(command, cwd=config.root, env=env)


def cmd_data_init(args: argparse.Namespace) -> int:
    from mllife.default_data import ensure_data

    config = load_config(args.config)
    if config.data_path.exists():
        print(f"{config.data_path} already exists; nothing written")
        return 0
    lines = ensure_data(config)
    if not lines:
        print(f"[data] default is 'none': nothing to write at {config.data_path}")
    print("\n".join(lines))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from mllife.store import Store

    config = load_config(args.config)
    store = Store(config.store_path)
    if not config.store_path.exists():
        print(f"no store at {config.store_path} yet: run `mllife run` first")
        return 0
    current = store.champion()
    if current is None:
        print("no champion deployed yet")
    else:
        print(
            f"champion: {current.name} {current.model_hash[:12]}"
            f" since {current.created_at:%Y-%m-%d %H:%M} (data {current.data_version})"
        )
        print(f"  why: {current.reason}")
        metrics = store.evaluations(model_hash=current.model_hash)
        for split in ("validation", "test"):
            part = {
                r["metric"]: r["value"]
                for r in metrics.filter(metrics["split"] == split).iter_rows(named=True)
            }
            if part:
                print(f"  {split}: accuracy {part['accuracy']:.4f} macro F1 {part['macro_f1']:.4f}")
    history = store.deployments()
    if history.height:
        print("deployment history:")
        for row in history.iter_rows(named=True):
            previous = (row["previous_hash"] or "none")[:12]
            print(
                f"  #{row['id']} {row['created_at']:%Y-%m-%d %H:%M} {row['action']:<8}"
                f" {row['name']} {row['model_hash'][:12]} (was {previous}): {row['reason']}"
            )
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from mllife.deployment import promote_model
    from mllife.store import Store

    config = load_config(args.config)
    done = promote_model(
        args.model, config=config, store=Store(config.store_path), reason=args.reason
    )
    print(
        f"champion is now {done.name} {done.model_hash[:12]} (deployment #{done.id},"
        f" was {(done.previous_hash or 'none')[:12]})"
    )
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from mllife.deployment import rollback
    from mllife.store import Store

    config = load_config(args.config)
    done = rollback(config=config, store=Store(config.store_path), reason=args.reason, to=args.to)
    print(
        f"rolled back: champion is now {done.name} {done.model_hash[:12]}"
        f" (deployment #{done.id}, was {done.previous_hash[:12]})"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    reports = sorted(config.reports_dir.glob("status-*.html"), key=lambda p: p.stat().st_mtime)
    if not reports:
        print(f"no report in {config.reports_dir} yet: `mllife run` builds one")
        return 1
    latest = reports[-1]
    print(latest)
    if args.open:
        import webbrowser

        webbrowser.open(latest.as_uri())
    return 0


def _known_classes(config) -> list[str]:
    """Classes a pattern's expected label must be among: declared, or read off the data."""
    if config.data.classes:
        return list(config.data.classes)
    if config.data.kind == "images":
        from mllife.data import infer_classes

        return list(infer_classes(config.data_path))
    from mllife.tables import read_table

    table = read_table(config.data_path)
    return sorted(table[config.data.target].cast(str).drop_nulls().unique().to_list())


def _registry(args: argparse.Namespace):
    from mllife.problems import ProblemRegistry
    from mllife.store import Store

    config = load_config(args.config)
    return config, ProblemRegistry(config, Store(config.store_path))


def _show(frame) -> None:
    import polars as pl

    with pl.Config(tbl_rows=200, tbl_cols=12, fmt_str_lengths=60, tbl_width_chars=160):
        print(frame)


def cmd_problems(args: argparse.Namespace) -> int:
    config, registry = _registry(args)
    action = args.problems_command
    if action == "add":
        registry.add_problem(args.name, description=args.description, min_score=args.min_score)
        print(f"added problem {args.name!r}; add 10-15 patterns with `mllife patterns add`")
    elif action == "list":
        _show(registry.problems())
    elif action == "show":
        _show(registry.patterns(args.name).drop("pattern_hash", "input_path"))
    elif action == "remove":
        removed = registry.remove(args.name, force=args.force)
        print(f"removed problem {args.name!r} and its {removed} patterns")
    elif action == "history":
        history = registry.history(args.name)
        _show(history.with_columns(history["model_hash"].str.slice(0, 12)))
        if args.chart:
            from mllife.plots import problem_history_png

            chart = problem_history_png(history)
            if chart is None:
                print("no results yet: run `mllife run` to score the models")
            else:
                with open(args.chart, "wb") as handle:
                    handle.write(chart)
                print(f"chart written to {args.chart}")
    elif action == "flips":
        _show(registry.flips(args.name, args.model_a, args.model_b))
    elif action == "import":
        from pathlib import Path

        source = Path(args.source)
        classes = _known_classes(config)
        if source.is_dir():
            added = registry.import_folder(
                args.name, source, kind=args.kind, source=args.origin, classes=classes
            )
        else:
            added = registry.import_csv(args.name, source, classes=classes)
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


def cmd_serve(args: argparse.Namespace) -> int:
    from mllife.serve import run_server

    run_server(load_config(args.config), host=args.host, port=args.port)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from mllife import keys
    from mllife.store import Store

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
        for key in keys.list_keys(store):
            print(f"{key.name}\troutes={sorted(key.routes)}\tmodels={sorted(key.models)}")
    else:
        keys.revoke_key(store, args.name)
        print(f"key {args.name!r} revoked")
    return 0


def cmd_data_add(args: argparse.Namespace) -> int:
    from mllife.data_add import add_data

    config = load_config(args.config)
    result = add_data(config, [Path(p) for p in args.paths])
    print(result.describe())
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from mllife.lineage import lineage
    from mllife.store import Store

    config = load_config(args.config)
    print("\n".join(lineage(Store(config.store_path), args.model).lines(
        artifacts_dir=config.artifacts_dir
    )))  # fmt: skip
    return 0


def cmd_checkout(args: argparse.Namespace) -> int:
    from mllife.artifacts import checkout_model
    from mllife.store import Store

    config = load_config(args.config)
    ref = checkout_model(config, Store(config.store_path), args.model, remote=args.remote)
    print(f"restored {ref.name} {ref.model_hash[:12]} at {ref.path(config.artifacts_dir)}")
    return 0


def cmd_push_pull(args: argparse.Namespace) -> int:
    from mllife import artifacts

    config = load_config(args.config)
    action = artifacts.push if args.command == "push" else artifacts.pull
    out = action(config, remote=args.remote)
    print(out.strip() or f"{args.command}: done")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mllife", description=__doc__)
    parser.add_argument("--config", default=None, help="path to mllife.toml (default: nearest)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize the whole lifecycle and print a summary")
    run.add_argument(
        "--job",
        default="lifecycle",
        choices=["lifecycle", "retrain", "monitor"],
        help="monitor: refresh the data and measure drift, no retraining",
    )
    run.add_argument(
        "--executor",
        default="in_process",
        choices=["in_process", "multiprocess"],
        help="multiprocess: independent steps (the candidates) run in parallel processes",
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="RUN_ID",
        help="re-execute a failed or killed run (default: the latest) from where it stopped",
    )
    run.set_defaults(func=cmd_run)
    ui = sub.add_parser("ui", help="open the Dagster UI on this project's instance")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)
    status = sub.add_parser("status", help="the current champion and the deployment history")
    status.set_defaults(func=cmd_status)
    report = sub.add_parser("report", help="the latest status report (path, or --open it)")
    report.add_argument("--open", action="store_true", help="open it in a browser")
    report.set_defaults(func=cmd_report)
    promote = sub.add_parser("promote", help="make a recorded model the champion by hand")
    promote.add_argument("model", help="model hash (or a unique prefix of 6+ digits)")
    promote.add_argument("--reason", required=True, help="why (recorded in the history)")
    promote.set_defaults(func=cmd_promote)
    back = sub.add_parser("rollback", help="bring back an earlier champion")
    back.add_argument(
        "--to",
        default=None,
        help="model hash prefix or deployment id like #3 (default: the previous)",
    )
    back.add_argument("--reason", required=True, help="why (recorded in the history)")
    back.set_defaults(func=cmd_rollback)
    problems = sub.add_parser("problems", help="the known-problems registry")
    psub = problems.add_subparsers(dest="problems_command", required=True)
    add = psub.add_parser("add", help="register a problem a client reported")
    add.add_argument("name")
    add.add_argument("--description", required=True)
    add.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="accuracy on its patterns a challenger must reach",
    )
    psub.add_parser("list", help="problems with their pattern counts")
    show = psub.add_parser("show", help="a problem's patterns, to inspect by hand")
    show.add_argument("name")
    remove = psub.add_parser("remove", help="remove a problem and its patterns")
    remove.add_argument("name")
    remove.add_argument("--force", action="store_true", help="even if it has results")
    history = psub.add_parser("history", help="per-problem scores by model version")
    history.add_argument("name", nargs="?", default=None)
    history.add_argument("--chart", default=None, help="also write a PNG chart here")
    flips = psub.add_parser("flips", help="patterns that flipped between two model versions")
    flips.add_argument("name")
    flips.add_argument("model_a")
    flips.add_argument("model_b")
    imp = psub.add_parser("import", help="bulk import: a folder <label>/<image> or a CSV")
    imp.add_argument("name")
    imp.add_argument("source")
    imp.add_argument("--kind", default="positive", choices=["positive", "negative"])
    imp.add_argument(
        "--origin",
        default="production",
        choices=["production", "contrived"],
        help="the source of folder patterns",
    )
    problems.set_defaults(func=cmd_problems)
    patterns = sub.add_parser("patterns", help="patterns of known problems")
    patsub = patterns.add_subparsers(dest="patterns_command", required=True)
    padd = patsub.add_parser("add", help="add one pattern to a problem")
    padd.add_argument("problem")
    padd.add_argument("--input", required=True, help="an image file, or a JSON row")
    padd.add_argument("--expected", required=True, help="the right label")
    padd.add_argument("--kind", required=True, choices=["positive", "negative"])
    padd.add_argument("--source", required=True, choices=["production", "contrived"])
    patterns.set_defaults(func=cmd_patterns)
    serve = sub.add_parser("serve", help="serve the champion over HTTP")
    serve.add_argument("--host", default=None, help="default: serving.host (127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="default: serving.port (8000)")
    serve.set_defaults(func=cmd_serve)
    keys = sub.add_parser("keys", help="API keys for the server")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kcreate = ksub.add_parser("create", help="create a key (printed once)")
    kcreate.add_argument("--name", required=True)
    kcreate.add_argument(
        "--routes",
        nargs="+",
        default=["predict", "feedback", "model"],
        choices=["predict", "feedback", "model"],
    )
    kcreate.add_argument(
        "--models", nargs="+", default=["*"], help="candidate names it may use, or *"
    )
    ksub.add_parser("list", help="active keys (names and permissions)")
    krevoke = ksub.add_parser("revoke", help="revoke a key")
    krevoke.add_argument("name")
    keys.set_defaults(func=cmd_keys)
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
    add.set_defaults(func=cmd_data_add)
    init = data_sub.add_parser("init", help="write the embedded default data (digits)")
    init.set_defaults(func=cmd_data_init)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MllifeError as exc:
        print(f"mllife: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
