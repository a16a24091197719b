"""The Kubernetes variant of the team profile (issue 23), checked as far as a machine
without a cluster can: the example instance settings validate against dagster-k8s's and
dagster-postgres's own config schemas, and the graph built for it runs each step as a
Kubernetes Job with the training steps on the training queue's nodes."""

import json
from pathlib import Path

import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher
from dagster_postgres import DagsterPostgresStorage

from assets.definitions import build_definitions
from assets.executors.team import (
    EXECUTOR_VARIABLE,
    K8S_CONFIG_TAG,
    executor_for_environment,
    training_tags,
)
from tests.conftest import make_project

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def test_example_instance_settings_are_valid(monkeypatch):
    monkeypatch.setenv("MLLIFE_POSTGRES_URL", "postgresql://u:p@db:5432/dagster")
    settings = yaml.safe_load((EXAMPLE / "dagster.yaml").read_text())
    dagster_instance_config(str(EXAMPLE))  # the file as a whole, as Dagster reads it
    launcher = process_config(K8sRunLauncher.config_type(), settings["run_launcher"]["config"])
    assert launcher.success, launcher.errors
    storage = process_config(DagsterPostgresStorage.config_type(), settings["storage"]["postgres"])
    assert storage.success, storage.errors
    assert settings["run_launcher"]["class"] == "K8sRunLauncher"


def test_graph_for_kubernetes_runs_steps_as_jobs(tmp_path, digits_folder, monkeypatch):
    config = make_project(tmp_path / "p", digits_folder, extra='\n[team]\ntraining_queue = "gpu"\n')
    monkeypatch.setenv(EXECUTOR_VARIABLE, "k8s")
    defs = build_definitions(config)
    assert defs.resolve_job_def("lifecycle").executor_def.name == "k8s"
    training = json.loads(defs.resolve_assets_def("candidate_cnn").op.tags[K8S_CONFIG_TAG])
    assert training["pod_spec_config"]["node_selector"] == {"mllife/queue": "gpu"}
    assert K8S_CONFIG_TAG not in defs.resolve_assets_def("splits").op.tags


def test_default_steps_go_to_the_store_node_and_training_to_its_own(monkeypatch):
    """The pod config each step gets, merged as dagster-k8s's executor merges it (its
    step_k8s_config, then the op's tags): every step on the node labelled for the default
    queue (it opens the DuckDB store), training steps on the training nodes instead."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import UserDefinedDagsterK8sConfig, get_user_defined_k8s_config

    monkeypatch.setenv(EXECUTOR_VARIABLE, "k8s")
    resolved = executor_for_environment().config_schema.resolve_config({})
    assert resolved.success, resolved.errors
    step_config = UserDefinedDagsterK8sConfig.from_dict(resolved.value["config"]["step_k8s_config"])

    def pod_spec(tags: dict) -> dict:
        base = K8sContainerContext(run_k8s_config=step_config)
        serialized = {key: json.dumps(value) for key, value in tags.items()}
        ops = K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(serialized))
        return base.merge(ops).run_k8s_config.pod_spec_config

    assert pod_spec({})["node_selector"] == {"mllife/queue": "dagster"}
    assert pod_spec(training_tags("gpu"))["node_selector"] == {"mllife/queue": "gpu"}
