"""End to end: the whole asset graph on a real Dagster instance, store and artifacts."""

import re
import shutil

import numpy as np
import pytest

from assets.runtime.run import run_lifecycle
from mllife._errors import MllifeError
from mllife.config.project import load_config
from mllife.models.registry import champion_ref, load_model
from mllife.storage.store import Store
from tests.conftest import copy_project, make_project


@pytest.fixture
def first_run(deployed_digits):
    """The suite's shared first run (read only: tests that run again copy it)."""
    return deployed_digits


def test_first_run_promotes_a_champion_that_loads_and_predicts(first_run):
    config_path, outcome = first_run
    assert outcome.success, "\n".join(outcome.lines)
    config = load_config(config_path)
    store = Store(config.store_path)
    ref = champion_ref(store)
    assert ref is not None
    model = load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    files = sorted(config.data_path.glob("7/*.png"))[:20]
    predicted = model.predict(files)
    assert np.mean(predicted == "7") > 0.8


def test_latency_is_timed_only_against_a_budget(first_run):
    """No [promotion] max_p95_latency_ms in the project: no 200 timed predictions on
    every run; the gate says no budget is set. With a budget set only after the
    challenger was chosen, the gate cannot pass on a measurement it never made."""
    from assets.graph.step_outputs import for_project
    from mllife.config.policy import PromotionConfig
    from mllife.promotion.challenger import reevaluate

    config_path, outcome = first_run
    challenger = for_project(load_config(config_path)).load_value(outcome.run_id, "challenger")
    assert challenger.evidence["latency_p95_ms"] is None
    (gate,) = [g for g in challenger.decision.gates if g.name == "latency"]
    assert gate.passed and gate.reason == "no latency budget set"
    budget = PromotionConfig(min_accuracy=0.8, max_val_test_gap=0.08, max_p95_latency_ms=50)
    (gate,) = [g for g in reevaluate(challenger, budget).gates if g.name == "latency"]
    assert not gate.passed and "materialize challenger again" in gate.reason


def test_first_run_recorded_everything_in_the_store(first_run):
    config_path, _ = first_run
    config = load_config(config_path)
    store = Store(config.store_path)
    assert store.datasets().height == 1
    models = store.models()
    assert sorted(models["name"].to_list()) == ["baseline_majority", "cnn", "logreg"]
    evaluations = store.evaluations()
    validation_accuracy = evaluations.filter(
        (evaluations["split"] == "validation") & (evaluations["metric"] == "accuracy")
    )
    accuracy = dict(
        zip(validation_accuracy["model_hash"], validation_accuracy["value"], strict=True)
    )
    by_name = dict(zip(models["name"], models["model_hash"], strict=True))
    assert accuracy[by_name["logreg"]] > 0.8 and accuracy[by_name["cnn"]] > 0.8
    assert accuracy[by_name["baseline_majority"]] < 0.2  # the floor a model must beat
    # the sealed test set is read for the chosen challenger only (no champion to compare)
    reads = store.query("SELECT model_hash, asset FROM test_reads")
    assert reads.rows() == [(store.champion().model_hash, "challenger")]
    deployments = store.deployments()
    assert deployments.height == 1 and deployments["action"][0] == "promote"


def test_first_run_wrote_the_report_and_summary(first_run):
    _, outcome = first_run
    text = "\n".join(outcome.lines)
    assert "data version" in text and "champion (promoted)" in text
    # how many models the run fit, its candidates and their search trials
    assert re.search(
        r"models fit: 3 candidates \(baseline_majority, cnn, logreg\), \d+ trials", text
    )
    report_line = next(line for line in outcome.lines if line.startswith("report: "))
    html = open(report_line.removeprefix("report: ")).read()
    assert "Status for the client" in html and "in 10" in html or "in 20" in html
    assert "data:image/png;base64," in html


@pytest.fixture(scope="module")
def forced_rerun(deployed_digits, tmp_path_factory):
    """A copy of the first run's project, run again with --force on the same data: what
    it held before (champion, pattern results) and the second run's outcome."""
    config_path = copy_project(deployed_digits[0], tmp_path_factory.mktemp("forced") / "p")
    store = Store(load_config(config_path).store_path)
    before = {"champion": store.champion(), "pattern_results": _pattern_results(store)}
    # forced: an unchanged project is otherwise up to date and retrains nothing
    return config_path, before, run_lifecycle(config_path, log_level="WARNING", force=True)


def _pattern_results(store: Store) -> int:
    return store.query("SELECT count(*) AS n FROM pattern_results")["n"][0]


def test_second_run_on_the_same_data_keeps_the_champion(forced_rerun):
    config_path, before, outcome = forced_rerun
    store = Store(load_config(config_path).store_path)
    assert outcome.success, "\n".join(outcome.lines)
    after = store.champion()
    # Training is seeded: the same data and config reproduce the same sklearn model hash.
    assert after.model_hash == before["champion"].model_hash
    assert after.id == before["champion"].id
    assert any("champion (unchanged)" in line for line in outcome.lines)
    assert store.test_read_count() == 2  # one challenger read per run (it is the champion)


def test_failing_candidate_is_visible_others_still_evaluated_champion_unchanged(
    first_run, tmp_path
):
    config_path = copy_project(first_run[0], tmp_path / "p")
    store = Store(load_config(config_path).store_path)
    before = store.champion()
    text = config_path.read_text().replace("C = 0.5", "C = 0.5, not_a_param = 1")
    config_path.write_text(text)
    outcome = run_lifecycle(config_path, log_level="WARNING")
    assert not outcome.success
    lines = "\n".join(outcome.lines)
    assert "FAILED candidate_logreg" in lines and "not_a_param" in lines
    # the other candidate was still evaluated
    assert re.search(r"^  cnn +validation accuracy", lines, re.MULTILINE)
    assert store.champion() == before


def test_missing_data_folder_is_a_clear_failure(tmp_path):
    config_path = tmp_path / "mllife.toml"
    config_path.write_text(
        '[data]\npath = "mine"\ndefault = "none"\n[[candidates]]\nname = "lr"\n'
        'kind = "sklearn"\nestimator = "sklearn.linear_model.LogisticRegression"\n'
    )
    outcome = run_lifecycle(config_path, log_level="WARNING")
    assert not outcome.success
    failure = next(line for line in outcome.lines if line.startswith("FAILED raw_data"))
    assert str(tmp_path / "mine") in failure and "mllife data init" in failure


def test_default_data_that_cannot_be_written_stops_the_run_before_it_starts(tmp_path):
    # The default data is written by a child process (beside the graph's imports); its
    # failure must reach the user as an error naming the path, and no run may start.
    (tmp_path / "blocker").write_text("a file where the data folder's parent should be")
    config_path = tmp_path / "mllife.toml"
    config_path.write_text(
        '[data]\npath = "blocker/digits"\n[[candidates]]\nname = "lr"\n'
        'kind = "sklearn"\nestimator = "sklearn.linear_model.LogisticRegression"\n'
    )
    with pytest.raises(MllifeError, match=r"writing the default data to .*blocker/digits failed"):
        run_lifecycle(config_path, log_level="WARNING")
    home = tmp_path / ".mllife" / "dagster"
    if home.exists():  # the instance may exist; no run may have been created in it
        import dagster as dg

        assert dg.DagsterInstance.from_config(str(home)).get_runs() == []


def test_refused_challenger_leaves_the_champion_and_explains_every_failed_gate(first_run, tmp_path):
    config_path = copy_project(first_run[0], tmp_path / "p")
    store = Store(load_config(config_path).store_path)
    before = store.champion()
    # A stricter baseline and different training: the new challenger must be refused.
    text = config_path.read_text().replace("min_accuracy = 0.8", "min_accuracy = 0.9999")
    config_path.write_text(text.replace("C = 0.5", "C = 0.05"))
    outcome = run_lifecycle(config_path, log_level="WARNING")
    assert outcome.refused and not outcome.success
    lines = "\n".join(outcome.lines)
    assert "gate threshold_accuracy FAILED" in lines and "< minimum 0.9999" in lines
    # the policy gates on the sealed test set: the bar and the paired comparison read it,
    # and the champion's predictions on it are one more recorded read
    assert re.search(r"threshold_accuracy FAILED.*test accuracy 0\.\d+ < minimum", lines)
    reads = store.query(
        "SELECT model_hash FROM test_reads WHERE asset = 'challenger' AND run_id = ?",
        [outcome.run_id],
    )
    refused = store.query("SELECT model_hash FROM challengers ORDER BY created_at DESC LIMIT 1")
    # the challenger's own read, and the champion's predictions for the paired comparison
    assert sorted(reads["model_hash"]) == sorted([refused["model_hash"][0], before.model_hash])
    assert f"champion unchanged: {before.model_hash[:12]}" in lines
    assert store.champion() == before


def test_runs_live_on_the_projects_persistent_dagster_instance(first_run):
    import os

    import dagster as dg

    config_path, outcome = first_run
    home = load_config(config_path).dagster_home
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as instance:
            run = instance.get_run_by_id(outcome.run_id)
            assert run is not None and run.job_name == "lifecycle"
            event = instance.get_latest_materialization_event(dg.AssetKey("champion"))
            assert event is not None
            assert instance.get_run_by_id(event.run_id).job_name == "lifecycle"
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def test_status_command_shows_champion_and_history(first_run, capsys):
    from mllife.cli import main

    config_path, _ = first_run
    assert main(["--config", str(config_path), "status"]) == 0
    out = capsys.readouterr().out
    assert "champion: logreg" in out and "deployment history:" in out and "#1" in out


def test_table_example_runs_and_a_broken_table_stops_at_the_contract(tmp_path):
    import polars as pl

    from tests.conftest import REPO
    from tests.serving import Receiver

    example = (REPO / "examples" / "breast_cancer" / "mllife.toml").read_text()
    config_path = tmp_path / "mllife.toml"
    # fewer epochs and trials keep the test light; the graph is the same
    config_path.write_text(example.replace("epochs = 60", "epochs = 5"))
    # its derived features (features.py; the contract is inferred here, not copied)
    shutil.copy(REPO / "examples" / "breast_cancer" / "features.py", tmp_path)
    outcome = run_lifecycle(config_path, log_level="WARNING")
    assert outcome.success, "\n".join(outcome.lines)
    config = load_config(config_path)
    store = Store(config.store_path)
    before = store.champion()
    assert before is not None
    assert {"logreg", "gboost", "mlp", "baseline_majority"} <= set(store.models()["name"])
    model = load_model(champion_ref(store), artifacts_dir=config.artifacts_dir, store=store)
    rows = pl.read_parquet(config.data_path).drop("id", "target").head(20)
    # the raw 30 columns: the champion computes the two derived ones itself
    assert set(model.predict(rows)) <= {"malignant", "benign"}
    assert model.preprocessor.derived.columns == ("perimeter_per_radius", "worst_to_mean_area")
    # what each column is worth to the challenger, and costs, recorded and reported
    values = store.query("SELECT * FROM column_values WHERE run_id = ?", [outcome.run_id])
    assert values.height == 32 and (values["width"] == 1).all()
    assert "worst_to_mean_area" in values["column_name"].to_list()
    assert (values["low"] > 0).any() and (values["micros_per_row"] > 0).all()
    report = (config.reports_dir / f"status-{outcome.run_id}.html").read_text()
    assert "What each column is worth" in report

    hook = Receiver()  # alerts go to a webhook (as to Slack or Teams)
    with config_path.open("a") as file:
        file.write(f'\n[alerts]\nwebhook = "{hook.url}"\n')
    pl.read_parquet(config.data_path).drop("mean_radius").write_parquet(config.data_path)
    outcome = run_lifecycle(config_path, log_level="WARNING")
    lines = "\n".join(outcome.lines)
    assert not outcome.ok
    assert "check raw_data.raw_data_contract FAILED" in lines and "mean_radius" in lines
    assert store.champion() == before
    # the same faulty table again: refused again, never reused as if it had passed
    again = run_lifecycle(config_path, log_level="WARNING")
    lines = "\n".join(again.lines)
    assert not again.ok and "raw_data: its blocking check raw_data_contract failed" in lines
    assert "check raw_data.raw_data_contract FAILED" in lines and "mean_radius" in lines
    assert store.champion() == before
    # each failed run's blocking check reached the webhook once, naming the run and column
    hook.close()
    assert hook.kinds() == ["check_failed", "check_failed"]
    for run, body in zip((outcome, again), hook.bodies, strict=True):
        assert f"raw_data.raw_data_contract failed in run {run.run_id[:8]}" in body["text"]
        assert "mean_radius" in body["text"]
        assert "alert sent: blocking check raw_data.raw_data_contract" in "\n".join(run.lines)


def test_report_renders_in_a_real_browser(first_run, tmp_path):
    from tests.browser import Browser

    _, outcome = first_run
    report = next(line for line in outcome.lines if line.startswith("report: "))
    path = report.removeprefix("report: ")
    with Browser() as browser:
        browser.goto("file://" + path)
        sections = browser.evaluate(
            "['client', 'technical', 'gallery'].map(id => !!document.getElementById(id))"
        )
        assert sections == [True, True, True]
        images = browser.evaluate("document.images.length")
        broken = browser.evaluate(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.alt)"
        )
        assert images >= 3 and broken == []  # confusion matrix, history, thumbnails
        text = browser.evaluate("document.body.innerText")
        assert "Status for the client" in text and "predicted as" in text
        card = browser.evaluate(
            "Array.from(document.querySelectorAll('.card dt')).map(d => d.innerText)"
        )
        assert card == ["model", "decision", "accuracy on the sealed test set", "what changed"]
        assert "every time times" not in text
        # technical sections fold; the first opens; every one opened for the layout check
        assert browser.evaluate("document.querySelectorAll('details.technical').length") >= 3
        browser.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        for width in (1280, 390):  # a laptop and a phone
            browser.call("Emulation.setDeviceMetricsOverride", width=width, height=900,
                         deviceScaleFactor=1, mobile=width < 600)  # fmt: skip
            assert browser.evaluate(OVERFLOWING) == [], f"overflow at {width} px"
            shot = browser.screenshot(tmp_path / f"report-{width}.png")
            assert shot.stat().st_size > 10_000
        assert browser.console_errors == []


#: elements wider than their container (tables scroll inside their own box instead), and
#: a page wider than the window
OVERFLOWING = """(() => {
  const found = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    found.push('page ' + document.documentElement.scrollWidth + ' > ' + window.innerWidth);
  for (const el of document.body.querySelectorAll('*')) {
    const parent = el.parentElement;
    if (!parent || (el.closest('.scroll') && !el.classList.contains('scroll'))) continue;
    const r = el.getBoundingClientRect(), p = parent.getBoundingClientRect();
    if (r.width && (r.right > p.right + 1 || r.left < p.left - 1))
      found.push(`${el.tagName}.${el.className}: ${(el.innerText || el.alt || '').slice(0, 40)}`);
  }
  return found.slice(0, 10);
})()"""


def test_dagster_ui_shows_the_graph_and_check_results(first_run, tmp_path):
    """The real webserver on the run's instance, looked at in headless Chromium."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from mllife.cli._ui import GROUPS, lineage_url
    from tests.browser import Browser
    from tests.serving import free_port
    from tests.ui_graphql import poll_graphql

    config_path, outcome = first_run
    config = load_config(config_path)
    from assets.definitions import build_definitions

    graph = build_definitions(config_path).resolve_asset_graph()
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys()} == set(GROUPS)
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster-webserver")),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "assets.definitions",
        ],
        env={
            **os.environ,
            "DAGSTER_HOME": str(config.dagster_home),
            "MLLIFE_CONFIG": str(config.path),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/server_info", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "dagster-webserver did not start"
                assert server.poll() is None, "dagster-webserver exited"
                time.sleep(1)
        # the run `mllife run` started (by a worker of its own) is the job's run as one
        # launched from the UI: listed on the job's page, re-executable from there
        query = (
            '{ pipelineOrError(params: {repositoryLocationName: "assets.definitions",'
            ' repositoryName: "__repository__", pipelineName: "lifecycle"}) { ... on Pipeline'
            " { runs { runId repositoryOrigin { repositoryLocationName } } } } }"
        )
        listed = poll_graphql(
            port, query, lambda data: (data.get("pipelineOrError") or {}).get("runs"),
            deadline=time.monotonic() + 60,
        )  # fmt: skip
        ours = [r for r in listed if r["runId"] == outcome.run_id]
        assert ours, (outcome.run_id, listed)
        assert ours[0]["repositoryOrigin"]["repositoryLocationName"] == "assets.definitions"
        dismiss = (
            "(() => { const b = Array.from(document.querySelectorAll('button'))"
            ".find(x => x.innerText.trim() === 'Skip'); if (b) b.click(); })()"
        )
        location = f"{base}/locations/assets.definitions/asset-groups"
        with Browser(width=1400, height=900) as browser:
            browser.goto(f"{location}/data")
            browser.wait_for(
                "['raw_data', 'clean_data', 'splits'].every("
                "n => document.body.innerText.includes(n))"
            )
            browser.evaluate(dismiss)
            browser.screenshot(tmp_path / "asset_graph_data.png")
            browser.goto(f"{location}/deployment")
            browser.wait_for(
                "['challenger', 'champion'].every(n => document.body.innerText.includes(n))"
            )
            # what `mllife ui` prints: the whole lineage, every group open (asset names
            # shown, not only group boxes)
            browser.goto(lineage_url("127.0.0.1", port))
            browser.wait_for(  # an asset of each group (the UI draws what is in view)
                "['raw_data', 'candidate_cnn', 'evaluation_cnn', 'challenger', 'drift_report',"
                " 'status_report'].every(n => document.body.innerText.includes(n))"
            )
            browser.screenshot(tmp_path / "lineage_expanded.png")
            browser.goto(f"{base}/assets/challenger?view=checks")
            browser.wait_for(
                "document.body.innerText.includes('threshold_accuracy')"
                " && document.body.innerText.includes('Passed')"
            )
            text = browser.evaluate("document.body.innerText")
            for gate in ("val_test_agreement", "beats_champion", "simpler_not_better", "latency"):
                assert gate in text
            shot = browser.screenshot(tmp_path / "challenger_checks.png")
        assert shot.stat().st_size > 10_000
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_new_data_sensor_requests_one_run_per_data_version(first_run, tmp_path, digits_folder):
    import shutil

    import dagster as dg

    from assets.definitions import build_definitions
    from assets.graph.resources import MllifeProject

    config_path = make_project(tmp_path / "p", digits_folder)
    defs = build_definitions(config_path)
    sensor = defs.resolve_sensor_def("new_data_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    project = MllifeProject(config_path=str(config_path))

    def tick(cursor):
        with dg.build_sensor_context(cursor=cursor, resources={"project": project}) as ctx:
            result = sensor.evaluate_tick(ctx)
            return result, ctx.cursor

    first, cursor = tick(None)
    assert len(first.run_requests) == 1
    key = first.run_requests[0].run_key
    again, cursor_again = tick(cursor)
    assert again.run_requests == [] and cursor_again == key  # same data: no second run
    shutil.copy(digits_folder / "3" / "0003.png", tmp_path / "p/data/digits/8/new.png")
    changed, _ = tick(cursor)
    assert len(changed.run_requests) == 1 and changed.run_requests[0].run_key != key


def test_known_problems_are_scored_for_every_version_with_history(first_run, forced_rerun):
    from mllife.problems.registry import ProblemRegistry

    config_path, _ = first_run
    config = load_config(config_path)
    registry = ProblemRegistry(config, Store(config.store_path))
    history = registry.history()
    assert set(history["problem"]) == {"inverted_colours", "one_vs_seven", "rotated_strokes"}
    # every model version of the store has a score on every problem
    assert history.group_by("problem").len()["len"].min() >= 3
    rerun_path, before, outcome = forced_rerun
    assert outcome.ok
    after = _pattern_results(Store(load_config(rerun_path).store_path))
    assert after == before["pattern_results"]  # the same models again: nothing new to score


def test_monitor_job_flags_drift_in_data_that_arrived_after_the_champion(first_run, tmp_path):
    import numpy as np
    from PIL import Image

    from mllife.data.defaults import encode_gray_png

    config_path = copy_project(first_run[0], tmp_path / "p")
    quiet = run_lifecycle(config_path, job_name="monitor", log_level="WARNING")
    assert quiet.success  # no new data: nothing to compare, the check passes
    # a batch of colour-inverted digits lands (the "photo filter" arrives in production)
    folder = load_config(config_path).data_path
    for i, file in enumerate(sorted(folder.glob("3/*.png"))[:60]):
        with Image.open(file) as image:
            pixels = 255 - np.asarray(image.convert("L"))
        (folder / "3" / f"inverted_{i:03d}.png").write_bytes(encode_gray_png(pixels))
    outcome = run_lifecycle(config_path, job_name="monitor", log_level="WARNING")
    text = "\n".join(outcome.lines)
    assert "check drift_report.drift_thresholds" in text and "brightness" in text
    assert Store(load_config(config_path).store_path).deployments().height == 1  # no retrain
    # The next lifecycle run's report shows that drift, with its chart, before promoting.
    outcome = run_lifecycle(config_path, log_level="WARNING")
    assert outcome.ok, "\n".join(outcome.lines)
    report_line = next(line for line in outcome.lines if line.startswith("report: "))
    page = open(report_line.removeprefix("report: ")).read()
    monitoring = page[page.index('<details id="monitoring"') :]
    assert 'alt="drift effect per column: New data since the deployment"' in monitoring
    assert "brightness" in monitoring and "DRIFT" in monitoring
    assert "Part of new data changed (brightness" in page  # said in the client part too


def test_a_passing_challenger_is_staged_when_the_rollout_asks_for_it(first_run, tmp_path):
    from mllife.promotion.rollout import rollout_history, staged_challenger
    from mllife.serve._lineup import rollout_challenger

    config_path = copy_project(first_run[0], tmp_path / "p")
    config = load_config(config_path)
    store = Store(config.store_path)
    before = store.champion()
    # Different training, a policy that lets it pass, and a rollout that stages.
    text = (
        config_path.read_text().replace("C = 0.5", "C = 0.05").replace("lr = 0.003", "lr = 0.004")
    )
    text = text.replace(  # a policy that lets it pass
        "[promotion]", "[promotion]\nmin_improvement = -1\nmin_relative_improvement = -0.5"
    )
    config_path.write_text(text + '\n[serving.rollout]\nmode = "shadow"\nstage = true\n')
    outcome = run_lifecycle(config_path, log_level="WARNING")
    lines = "\n".join(outcome.lines)
    assert outcome.success, lines
    assert "challenger staged for rollout" in lines and "staged rollout of" in lines
    assert "not enough traffic yet" in lines
    assert store.champion() == before  # staged, not promoted
    staged = staged_challenger(store)
    assert staged is not None and staged.model_hash != before.model_hash
    assert (
        rollout_challenger(load_config(config_path), store, before.model_hash) == staged.model_hash
    )
    assert rollout_history(store)["state"].to_list() == ["staged"]


def test_the_policy_checks_evaluate_the_policy_as_edited(first_run):
    from assets.graph import step_outputs
    from mllife._errors import PromotionError
    from mllife.config.project import PromotionConfig
    from mllife.promotion.challenger import reevaluate

    config_path, outcome = first_run
    config = load_config(config_path)
    challenger = step_outputs.for_project(config).load_value(outcome.run_id, "challenger")
    same = reevaluate(challenger, config.promotion)
    assert [g.passed for g in same.gates] == [g.passed for g in challenger.decision.gates]
    stricter = reevaluate(challenger, config.promotion.model_copy(update={"min_accuracy": 0.9999}))
    gate = stricter.gate("threshold_accuracy")
    assert not stricter.passed and not gate.passed and "< minimum 0.9999" in gate.reason
    other_split = PromotionConfig(gate_split="validation", selection_metric="macro_f1")
    with pytest.raises(PromotionError, match="gate_split 'test' -> 'validation'"):
        reevaluate(challenger, other_split)
