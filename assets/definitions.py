"""The Definitions Dagster loads (workspace.yaml): the whole lifecycle graph.

The candidates come from mllife.toml, found from $MLLIFE_CONFIG or the working
directory when Dagster loads the code location (``defs`` is lazy), so the graph always
matches the project's configuration.
"""

import os
from pathlib import Path

import dagster as dg

from assets.executors.team import executor_for_environment, training_tags
from assets.graph import data, deployment, step_outputs
from assets.graph._metadata import accepting_beta
from assets.graph.alerts import build_alerts_sensor
from assets.graph.code_versions import with_code_version
from assets.graph.evaluation import build_evaluation_asset, staleness_backtest
from assets.graph.monitoring import drift_report, served_predictions
from assets.graph.problems import build_problem_scores_asset, problem_files
from assets.graph.reports import build_status_report_asset
from assets.graph.resources import MllifeProject
from assets.graph.rollout import staged_rollout
from assets.graph.sensors import (
    build_monitoring_schedule,
    build_new_data_sensor,
    build_retrain_on_drift_sensor,
)
from assets.graph.training import build_candidate_asset
from assets.graph.versioning import artifact_versions
from mllife.config.project import PROFILE_VARIABLE, find_config, load_config


def _assets(config) -> list:
    names = [spec.name for spec in config.models_to_train]
    assets = [
        data.raw_data,
        data.clean_data,
        data.splits,
        *([data.label_issues] if config.cleaning.label_issues else []),
        *[
            build_candidate_asset(spec, op_tags=training_tags(config.team.training_queue))
            for spec in config.models_to_train
        ],
        *[build_evaluation_asset(spec) for spec in config.models_to_train],
        build_problem_scores_asset(names),
        deployment.build_challenger_asset(names),
        deployment.champion,
        staged_rollout,
        *([staleness_backtest] if config.data.time else []),
        build_status_report_asset(
            names, label_issues=config.cleaning.label_issues, staleness=bool(config.data.time)
        ),
        served_predictions,
        drift_report,
        artifact_versions,
    ]
    if config.owners:
        assets = [
            a.map_asset_specs(lambda spec: spec.replace_attributes(owners=config.owners))
            for a in assets
        ]
    assets = [a.map_asset_specs(with_code_version(a, config)) for a in assets]
    with accepting_beta():  # links from the UI to each asset's source
        return dg.with_source_code_references(assets)


def _jobs() -> tuple:
    """The lifecycle, retrain and monitor jobs."""
    lifecycle = dg.define_asset_job(
        "lifecycle",
        selection=dg.AssetSelection.all(),
        description="The whole lifecycle: data, training, evaluation, promotion, report.",
    )
    retrain = dg.define_asset_job(
        "retrain",
        selection=dg.AssetSelection.assets("splits").downstream()
        | dg.AssetSelection.assets("served_predictions"),
        description="From the splits on: train, evaluate, decide, report.",
    )
    monitor = dg.define_asset_job(
        "monitor",
        selection=dg.AssetSelection.assets(
            "raw_data",
            "clean_data",
            "splits",
            "served_predictions",
            "drift_report",
            "staged_rollout",
        ),
        description="Refresh the data stage, ingest served traffic, and measure drift of new"
        " data and served inputs against the champion's training data, without retraining.",
    )
    return lifecycle, retrain, monitor


def build_definitions(config_path: Path | str) -> dg.Definitions:
    config = load_config(config_path)
    checks = [
        data.raw_data_contract,
        data.clean_data_contract,
        data.class_balance_check,
        data.class_set,
        data.no_leakage,
        problem_files,
        deployment.build_policy_checks(config.promotion),
    ]
    lifecycle, retrain, monitor = _jobs()
    return dg.Definitions(
        sensors=[
            build_new_data_sensor(lifecycle),
            build_retrain_on_drift_sensor(monitor, retrain),
            build_alerts_sensor(config),
        ],
        schedules=[
            build_monitoring_schedule(
                monitor,
                config.monitoring.drift_check_minutes,
                # the team deployment has a daemon: drift is measured without asking
                on=os.environ.get(PROFILE_VARIABLE) == "team",
            )
        ],
        assets=_assets(config),
        asset_checks=checks,
        jobs=[lifecycle, retrain, monitor],
        loggers={"console": dg.colored_console_logger},
        executor=executor_for_environment(),
        resources={
            "project": MllifeProject(config_path=str(config.path)),
            "io_manager": step_outputs.for_project(config),
        },
    )


def _config_path() -> Path:
    return Path(os.environ["MLLIFE_CONFIG"]) if os.environ.get("MLLIFE_CONFIG") else find_config()


@dg.definitions
def defs() -> dg.Definitions:
    """Built when Dagster loads the code location, not on import: importing this module
    (a test, a script, a worker's preload) needs no mllife.toml; loading it without one
    fails with the ConfigError that says where it looked and what to do."""
    return build_definitions(_config_path())
