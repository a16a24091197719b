"""``python -m assets.run``: materialize the lifecycle job on the project's own instance.

``mllife run`` calls this in a child process (the library never imports Dagster). The
instance lives in ``.mllife/dagster`` so ``dagster dev`` shows the same runs afterwards.
"""

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import psutil

from mllife._errors import MllifeError
from mllife.config import ProjectConfig, load_config
from mllife.default_data import ensure_data

INSTANCE_YAML = "telemetry:\n  enabled: false\n"


def prepare_instance(config: ProjectConfig) -> dg.DagsterInstance:
    home = config.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


POLICY_STEP = "promotion_policy"


@dataclass(frozen=True)
class RunOutcome:
    """``success``: every step ran. ``refused``: the only failure was the promotion
    policy saying no, a normal outcome (the champion stays) rather than an error."""

    success: bool
    refused: bool
    run_id: str
    lines: list[str]
    #: seconds per phase: data_init, dagster_setup, dagster_run
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.success or self.refused


def run_lifecycle(
    config_path: Path | str, *, job_name: str = "lifecycle", log_level: str = "INFO"
) -> RunOutcome:
    config = load_config(config_path)
    os.environ["MLLIFE_CONFIG"] = str(config.path)
    clock = time.perf_counter()
    for line in ensure_data(config):
        print(line, flush=True)
    timings = {"data_init": time.perf_counter() - clock}
    clock = time.perf_counter()
    from assets.definitions import build_definitions  # torch, torchvision, sklearn, ...

    timings["graph_imports"] = time.perf_counter() - clock
    clock = time.perf_counter()
    instance = prepare_instance(config)
    defs = build_definitions(config.path)
    job = defs.resolve_job_def(job_name)
    timings["dagster_setup"] = time.perf_counter() - clock
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    clock = time.perf_counter()
    result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config)
    timings["dagster_run"] = time.perf_counter() - clock
    failed = {e.step_key for e in result.all_events if e.is_step_failure}
    refused = not result.success and failed == {POLICY_STEP}
    clock = time.perf_counter()
    lines = summarize(result, config, refused)
    timings["summary"] = time.perf_counter() - clock
    return RunOutcome(result.success, refused, result.run_id, lines, timings)


def _value(result, key: str):
    try:
        return result.asset_value(key)
    except Exception:  # not materialized in this run (failed or skipped): nothing to show
        return None


def summarize(result, config: ProjectConfig, refused: bool) -> list[str]:
    status = "success" if result.success else "challenger refused" if refused else "FAILED"
    lines = [f"run {result.run_id}: {status}"]
    splits = _value(result, "splits")
    if splits is not None:
        lines.append(f"data version {splits.data_version}  split sizes {splits.sizes()}")
    for spec in config.candidates:
        evaluation = _value(result, f"evaluation_{spec.name}")
        if evaluation is None:
            lines.append(f"  {spec.name:<12} not evaluated (see the failure below)")
            continue
        v, t = evaluation.validation, evaluation.test
        lines.append(
            f"  {spec.name:<12} val acc {v.accuracy:.4f} macro F1 {v.macro_f1:.4f} | "
            f"test acc {t.accuracy:.4f} macro F1 {t.macro_f1:.4f}"
        )
    challenger = _value(result, "challenger")
    champion = _value(result, "champion")
    if challenger is not None:
        lines.append(
            f"challenger {challenger.evaluation.ref.name}: {challenger.decision.summary()}"
        )
    if challenger is not None and not challenger.decision.passed:
        for gate in challenger.decision.failed_gates():
            lines.append(f"  gate {gate.name} FAILED: {gate.reason}")
    if champion is not None:
        c = champion.champion
        lines.append(f"champion ({champion.action}): {c.name} {c.model_hash[:12]}")
    elif challenger is not None:
        current = challenger.decision.champion_hash
        lines.append(f"champion unchanged: {current[:12] if current else 'none deployed yet'}")
    report = _value(result, "status_report")
    if report is not None:
        lines.append(f"report: {report.path}")
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed or evaluation.asset_key == dg.AssetKey("challenger"):
            continue  # the policy's gates are listed above
        level = "WARNING" if evaluation.severity == dg.AssetCheckSeverity.WARN else "FAILED"
        name = f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name}"
        meta = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        detail = meta.get("summary") or meta.get("reason") or ""
        lines.append(f"check {name} {level}: {detail}".rstrip(": "))
        if "failing_examples" in meta:
            lines.append("  " + str(meta["failing_examples"]).replace("\n", "\n  "))
    for event in result.all_events:
        if event.is_step_failure and not (refused and event.step_key == POLICY_STEP):
            error = event.step_failure_data.error
            message = error.cause.message if error and error.cause else error.message
            lines.append(f"FAILED {event.step_key}: {message.strip()}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assets.run")
    parser.add_argument("--config", default=None)
    parser.add_argument("--job", default="lifecycle", choices=["lifecycle", "retrain", "monitor"])
    args = parser.parse_args(argv)
    startup = time.time() - psutil.Process().create_time()  # interpreter + imports
    try:
        outcome = run_lifecycle(args.config or load_config().path, job_name=args.job)
    except MllifeError as exc:
        print(f"mllife: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(outcome.lines))
    phases = {"startup_and_imports": startup, **outcome.timings}
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    code = main()
    # Everything is persisted by now (store transactions committed, artifacts renamed
    # into place, the run recorded in the instance). Tearing down torch, dagster and
    # friends at interpreter exit takes 1-2.5 s of pure finalization, so skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
