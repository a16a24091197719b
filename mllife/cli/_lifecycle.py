"""Commands that run the lifecycle and look after the champion: run, status,
report, promote, rollback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime

from mllife._errors import MllifeError
from mllife.config.project import load_config
from mllife.storage.instance_settings import PROFILES


def profile_option(parser) -> None:
    parser.add_argument(
        "--profile",
        default="local",
        choices=PROFILES,
        help="team: the Dagster instance in the PostgreSQL database of [team] postgres_url"
        " (default local: SQLite files under .mllife/dagster)",
    )


def register(sub) -> None:
    """Add these commands to the ``mllife`` parser's subcommands."""
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
        choices=["in_process", "multiprocess", "celery"],
        help="multiprocess: independent steps (the candidates) run in parallel processes;"
        " celery (with --profile team): each step on a worker of [team] broker_url",
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="RUN_ID",
        help="re-execute a failed or killed run (default: the latest) from where it stopped",
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="materialize every asset, even those up to date (the lifecycle job otherwise"
        " reruns only what changed: data, code or configuration)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print Dagster's own log lines as the steps write them (they always go"
        " to the run's log file, .mllife/logs/)",
    )
    profile_option(run)
    run.set_defaults(func=cmd_run)
    status = sub.add_parser(
        "status",
        help="the current champion and the deployment history",
        description="The champion, its metrics and age, the deployment and rollout history,"
        " and refused challengers.",
    )
    status.add_argument(
        "--show-test",
        action="store_true",
        help="also every candidate's sealed test score (a run reads the test set for its"
        " chosen challenger only; each read here is recorded and wears the test set)",
    )
    profile_option(status)
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


def _orchestrate(args: argparse.Namespace, module: str, *extra: str) -> int:
    """Run an ``assets`` entry point in a child process: the library never imports Dagster."""
    config = load_config(args.config)
    command = [sys.executable, "-m", module, "--config", str(config.path), *extra]
    process = subprocess.Popen(command, cwd=config.root)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            # The child got the same Ctrl-C and terminates its run through the Dagster
            # instance; killing it here (what subprocess.call does) would cut that short.
            continue


def cmd_run(args: argparse.Namespace) -> int:
    extra = ["--job", args.job, "--executor", args.executor, "--profile", args.profile]
    if args.resume is not None:
        extra += ["--resume", args.resume]
    if args.force:
        extra.append("--force")
    if args.verbose:
        extra.append("--verbose")
    return _orchestrate(args, "assets.runtime.run", *extra)


def _print_ratings(config, store) -> None:
    """Users' ratings per model version, the segments not yet ingested included."""
    from mllife.monitoring.served_view import served_views
    from mllife.monitoring.traffic import served_ratings

    with served_views(config, store) as views:
        ratings = served_ratings(store, every=None, views=views)
    if ratings.height:
        print("users' ratings of served predictions (POST /rating):")
        for row in ratings.iter_rows(named=True):
            print(
                f"  {row['model_name']} {row['model']}: {row['ratings']} ratings, mean"
                f" {row['mean_rating']:.2f}/5, {row['low_share']:.0%} rated 1-2"
            )


def cmd_status(args: argparse.Namespace) -> int:
    from mllife.models.environment import describe_changes, environment_changes
    from mllife.models.registry import recorded_backbone
    from mllife.monitoring.alert_delivery import undelivered_alerts
    from mllife.monitoring.batch import STALE_ADVICE, staleness
    from mllife.storage.store import Store

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
        if (backbone := recorded_backbone(store, current.model_hash)) is not None:
            print(f"  {backbone}")
        row = store.model_row(current.model_hash)
        if changes := environment_changes(row["spec"] if row else None):
            print(
                f"  warning: other library versions than it was trained with:"
                f" {describe_changes(changes)}; retrain (`mllife run --force`) or install"
                " those versions (requirements.lock)"
            )
        age = staleness(config, store)
        if not age.passed:
            print(f"  warning: stale: {age.reason}; {STALE_ADVICE}")
        metrics = store.evaluations(model_hash=current.model_hash)
        for split in ("validation", "test"):
            part = {
                r["metric"]: r["value"]
                for r in metrics.filter(metrics["split"] == split).iter_rows(named=True)
            }
            if part:
                print(f"  {split}: accuracy {part['accuracy']:.4f} macro F1 {part['macro_f1']:.4f}")
        _print_test_wear(config, store, current.model_hash)
    history = store.deployments()
    if history.height:
        print("deployment history:")
        for row in history.iter_rows(named=True):
            previous = (row["previous_hash"] or "none")[:12]
            print(
                f"  #{row['id']} {row['created_at']:%Y-%m-%d %H:%M} {row['action']:<8}"
                f" {row['name']} {row['model_hash'][:12]} (was {previous}): {row['reason']}"
            )
    _print_rollout(config, store)
    _print_ratings(config, store)
    _print_data_findings(store)
    refused = store.query(
        "SELECT run_id, name, model_hash, summary, created_at FROM challengers"
        " WHERE NOT passed ORDER BY created_at DESC LIMIT 10"
    )
    if refused.height:
        print("refused challengers (newest first; the champion stayed):")
        for row in refused.iter_rows(named=True):
            print(
                f"  {row['created_at']:%Y-%m-%d %H:%M} {row['name']} {row['model_hash'][:12]}"
                f" (run {str(row['run_id'])[:8]}): {row['summary']}"
            )
    undelivered = undelivered_alerts(store)
    if undelivered.height:
        print("alerts NOT delivered (newest first; see [alerts]):")
        for row in undelivered.iter_rows(named=True):
            print(f"  {row['created_at']:%Y-%m-%d %H:%M} {row['kind']}: {row['error']}")
            print(f"    {row['text']}")
    if args.show_test:
        sys.stdout.flush()  # the child's lines come after these
        return _orchestrate(args, "assets.runtime.sealed_test", "--profile", args.profile)
    return 0


def _print_test_wear(config, store, model_hash: str) -> None:
    from mllife.evaluation.test_budget import sealed_set_wear

    row = store.model_row(model_hash)
    if row is None or not row.get("split_version"):
        return
    wear = sealed_set_wear(store, row["split_version"], config.promotion.max_test_reads)
    print(("  WARNING: " if wear.worn else "  ") + wear.describe())


def _print_rollout(config, store) -> None:
    from mllife.promotion.rollout import rollout_history, staged_challenger
    from mllife.promotion.rollout_rule import judge, rollout_evidence

    staged = staged_challenger(store)
    current = store.champion()
    rule = config.serving.rollout
    if staged is not None and current is not None:
        evidence = rollout_evidence(store, staged, current.model_hash)
        _, why = judge(evidence, rule)
        print(
            f"staged challenger: {staged.name} {staged.model_hash[:12]} since"
            f" {staged.since:%Y-%m-%d %H:%M} ({rule.mode} traffic)"
        )
        print(f"  served: {evidence.describe()}")
        print(f"  rule: {why}")
    history = rollout_history(store)
    if history.height:
        print("rollout history (newest first):")
        for row in history.iter_rows(named=True):
            print(
                f"  {row['created_at']:%Y-%m-%d %H:%M} {row['state']:<9} {row['name']}"
                f" {row['model_hash'][:12]}: {row['reason']}"
            )


def _print_data_findings(store) -> None:
    """What the data checks found in the newest split version."""
    found = store.query(
        "SELECT f.split_version, f.finding, f.count, f.summary FROM data_findings f"
        " WHERE f.split_version = (SELECT split_version FROM splits"
        " ORDER BY created_at DESC LIMIT 1) ORDER BY f.finding"
    )
    if not found.height:
        return
    print(f"data checks (split version {found['split_version'][0][:12]}):")
    said = set()
    for row in found.iter_rows(named=True):
        what = _FINDINGS[row["finding"]]
        if (what, row["summary"]) not in said:  # two near-duplicate counts, one summary
            said.add((what, row["summary"]))
            print(f"  {what}: {row['summary']}")


_FINDINGS = {
    "near_duplicate_leaks": "near-duplicates",
    "near_duplicates_within_splits": "near-duplicates",
    "label_issues": "suspected label errors",
}


def cmd_report(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    reports = sorted(config.reports_dir.glob("status-*.html"), key=lambda p: p.stat().st_mtime)
    if not reports:
        print(f"no report in {config.reports_dir} yet: `mllife run` builds one")
        return 1
    latest = reports[-1]
    print(latest)
    written = datetime.fromtimestamp(latest.stat().st_mtime)
    print(f"written {written:%Y-%m-%d %H:%M:%S} by run {latest.stem[7:]}", file=sys.stderr)
    last = _last_run(config)
    if last is not None and last["status"] == "failed" and last["run_id"] != latest.stem[7:]:
        ended = datetime.fromtimestamp(last["finished_at"])
        print(
            f"note: the latest run, {last['run_id']} ({ended:%Y-%m-%d %H:%M:%S}), failed and"
            " wrote no report; this one is older. `mllife run --resume` finishes that run.",
            file=sys.stderr,
        )
    if args.open:
        import webbrowser

        webbrowser.open(latest.as_uri())
    return 0


def _last_run(config) -> dict | None:
    """How the newest `mllife run` ended (written by it), or None before any."""
    import json

    path = config.state_dir / "last_run.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise MllifeError(f"{path} is not valid JSON ({exc}); delete it") from exc


def cmd_promote(args: argparse.Namespace) -> int:
    from mllife.promotion.deploy import promote_model
    from mllife.storage.store import Store

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
    from mllife.promotion.deploy import rollback
    from mllife.storage.store import Store

    config = load_config(args.config)
    done = rollback(config=config, store=Store(config.store_path), reason=args.reason, to=args.to)
    print(
        f"rolled back: champion is now {done.name} {done.model_hash[:12]}"
        f" (deployment #{done.id}, was {done.previous_hash[:12]})"
    )
    return 0
