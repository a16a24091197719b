"""`mllife ui`: `dagster dev` on the project's instance, stopped with everything it
started."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys

from mllife.cli._lifecycle import profile_option
from mllife.cli._table import port
from mllife.config.project import PROFILE_VARIABLE, load_config


def register(sub) -> None:
    """Add `mllife ui` to the ``mllife`` parser's subcommands."""
    ui = sub.add_parser("ui", help="open the Dagster UI on this project's instance")
    profile_option(ui)
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    ui.add_argument("--port", type=port, default=3000, help="port to listen on (3000)")
    ui.set_defaults(func=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    from mllife.storage.instance_settings import (
        POSTGRES_URL_VARIABLE,
        instance_home,
        write_instance_settings,
    )

    os.environ[PROFILE_VARIABLE] = args.profile
    config = load_config(args.config)
    home = instance_home(config.state_dir, args.profile)
    write_instance_settings(home, profile=args.profile)
    env = {**os.environ, "DAGSTER_HOME": str(home), "MLLIFE_CONFIG": str(config.path)}
    # `dagster dev` warns that `dg dev` supersedes it; `dg dev` needs a dg project layout
    # this project does not have, so the warning says nothing the user can act on
    superseded = "ignore:Function `dev_command` is superseded:Warning"
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), superseded]))
    if args.profile == "team":
        from mllife.storage.services import check_postgres, for_dagster, team_postgres_url

        url = team_postgres_url(config.team)
        check_postgres(url)
        env[POSTGRES_URL_VARIABLE] = for_dagster(url)
    command = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        *_code_location(config),
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    print(
        f"mllife ui: the lineage graph at {lineage_url(args.host, args.port)}"
        " (Ctrl-C stops the UI, its daemon and code servers)",
        flush=True,
    )
    return run_until_signalled(command, cwd=config.root, env=env)


#: the asset groups of the lifecycle graph, one per stage (a test holds the graph to it)
GROUPS = ("data", "training", "evaluation", "deployment", "monitoring", "reports")


def lineage_url(host: str, port: int, location: str = "assets.definitions") -> str:
    """The UI's lineage graph with every group open (``expanded`` is the UI's own query
    parameter; a group's id depends on a UI feature flag, so both forms are named)."""
    from urllib.parse import quote

    ids = [f"{form}:{group}" for group in GROUPS
           for form in ("global@global", f"__repository__@{location}")]  # fmt: skip
    return f"http://{host}:{port}/asset-groups?expanded={quote(','.join(ids), safe=',@:')}"


def run_until_signalled(command: list[str], **popen) -> int:
    """Run ``command`` in its own process group and pass SIGINT, SIGTERM and SIGHUP on
    to it; when it has not ended 20 s later, the whole group is killed. `dagster dev`
    starts a webserver, a daemon and code servers: killed alone (as the default SIGTERM
    of this process would leave them), they keep serving the port."""
    import signal

    process = subprocess.Popen(command, start_new_session=True, **popen)
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in handled}
    try:
        while True:
            try:
                return process.wait(timeout=None if not received else 20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        # whatever the group left behind (a code server that ignored the signal)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)


def _code_location(config) -> list[str]:
    """The project's ``workspace.yaml``, or without one the module ``mllife run`` loads
    then too (``assets.definitions``, found through MLLIFE_CONFIG)."""
    workspace = config.root / "workspace.yaml"
    return ["-w", str(workspace)] if workspace.is_file() else ["-m", "assets.definitions"]
