"""Memoized lifecycle runs on a real Dagster instance: an unchanged project starts no
run; a policy edit reruns the gates and not the models; an edited candidate retrains that
candidate only; new data reruns the data stage and every model; --force reruns all; a
stored result that is gone or tampered with is recomputed with a warning, never used."""

from __future__ import annotations

import re
import shutil

import dagster as dg
from PIL import Image

from assets.runtime.run import prepare_instance, run_lifecycle
from mllife.config.project import load_config
from mllife.storage.store import Store
from tests.conftest import copy_project

CANDIDATES = ("candidate_baseline_majority", "candidate_cnn", "candidate_logreg")


def _latest_runs(instance) -> dict[str, str]:
    keys = [*CANDIDATES, "splits", "challenger", "status_report"]
    return {k: instance.get_latest_materialization_event(dg.AssetKey(k)).run_id for k in keys}


def _fits(lines: list[str]) -> int:
    return int(re.search(r"model fits: (\d+)", "\n".join(lines))[1])


def test_memoized_runs_rerun_exactly_what_changed(tmp_path, clean_small_run, capfd):
    config_path = copy_project(clean_small_run, tmp_path / "p")  # after a first run
    config = load_config(config_path)
    instance = prepare_instance(config)
    runs = len(instance.get_runs())

    unchanged = run_lifecycle(config_path, log_level="WARNING")
    assert unchanged.success and unchanged.lines[0].startswith("up to date:")
    assert "champion logreg" in unchanged.lines[0] and _fits(unchanged.lines) == 0
    assert len(instance.get_runs()) == runs  # no run at all
    assert "check" in unchanged.timings  # told without importing the asset graph

    before = _latest_runs(instance)
    config_path.write_text(
        config_path.read_text().replace("min_accuracy = 0.8", "min_accuracy = 0.81")
    )
    policy = run_lifecycle(config_path, log_level="WARNING")
    assert policy.success and _fits(policy.lines) == 0
    assert "models fit: none in this run" in policy.lines
    after = _latest_runs(instance)
    assert all(after[k] == before[k] for k in (*CANDIDATES, "splits"))  # no retraining
    assert after["challenger"] == policy.run_id  # the gates were evaluated again

    # a known problem added (a folder with its problem.toml): scored for every stored
    # model version by the next run, without retraining; then the project is up to date
    seven = sorted((config.data_path / "7").glob("*.png"))[-1]
    problem = config.problems_dir / "late_sevens"
    problem.mkdir()
    shutil.copy(seven, problem / "seven.png")
    (problem / "problem.toml").write_text(
        'description = "A seven a client sent in."\n[[patterns]]\nfile = "seven.png"\n'
        'expected = "7"\nkind = "positive"\nsource = "production"\n'
    )
    scored = run_lifecycle(config_path, log_level="WARNING")
    assert scored.success and _fits(scored.lines) == 0, "\n".join(scored.lines)
    assert "problem_scores: the known problems changed" in "\n".join(scored.lines)
    assert _latest_runs(instance)["candidate_logreg"] == before["candidate_logreg"]
    store = Store(config.store_path)
    results = store.query(
        "SELECT count(DISTINCT r.model_hash) AS n FROM pattern_results r"
        " JOIN patterns p USING (pattern_hash) WHERE p.problem = 'late_sevens'"
    )
    assert results["n"][0] == store.models().height  # every stored version scored
    assert run_lifecycle(config_path, log_level="WARNING").lines[0].startswith("up to date:")

    config_path.write_text(config_path.read_text().replace("C = 0.5", "C = 0.4"))
    spec = run_lifecycle(config_path, log_level="WARNING")
    assert spec.ok and _fits(spec.lines) == 1
    fit = next(line for line in spec.lines if line.startswith("models fit: "))
    assert re.fullmatch(r"models fit: 1 candidate \(logreg\), \d+ trials", fit), fit
    latest = _latest_runs(instance)
    assert latest["candidate_logreg"] == spec.run_id
    assert latest["candidate_cnn"] == after["candidate_cnn"]

    source = sorted((config.data_path / "3").glob("*.png"))[0]
    # new data: a mirrored three (a byte-changed copy would be a near-duplicate leak)
    Image.open(source).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(source.parent / "zz_new.png")
    new_data = run_lifecycle(config_path, log_level="WARNING")
    assert new_data.ok and _fits(new_data.lines) == len(CANDIDATES)
    assert "raw_data: the data changed" in "\n".join(new_data.lines)

    forced = run_lifecycle(config_path, log_level="WARNING", force=True)
    assert forced.ok and "model fits" not in "\n".join(forced.lines)  # no plan: all ran
    assert _latest_runs(instance)["candidate_cnn"] == forced.run_id

    # damaged results: a model artifact gone, a stored step result tampered with
    cnn = instance.get_latest_materialization_event(dg.AssetKey("candidate_cnn"))
    model_hash = cnn.asset_materialization.tags["dagster/data_version"]
    for artifact in config.artifacts_dir.glob(f"models/{model_hash}.*"):
        artifact.unlink()
    stored = config.dagster_home / "storage" / forced.run_id / "status_report"
    stored.write_bytes(stored.read_bytes()[:-1] + b"!")
    capfd.readouterr()
    repaired = run_lifecycle(config_path, log_level="WARNING")
    warnings = capfd.readouterr().err
    assert repaired.ok, "\n".join(repaired.lines)
    assert "candidate_cnn: its model artifact" in warnings and "recomputing it" in warnings
    assert "status_report: its stored result" in warnings and "fails its signature" in warnings
    assert _fits(repaired.lines) == 1
    assert _latest_runs(instance)["status_report"] == repaired.run_id


def test_an_unchanged_project_still_says_when_its_champion_is_stale(
    tmp_path, clean_small_run, capsys
):
    """An unchanged project starts no run, so the monitoring job's champion-age check
    never runs: the up-to-date answer of `mllife run` and `mllife status` check it."""
    import os

    from mllife.cli import main as cli

    config_path = copy_project(clean_small_run, tmp_path / "p")
    config = load_config(config_path)
    environment = {name: os.environ.get(name) for name in ("DAGSTER_HOME", "MLLIFE_CONFIG")}
    fresh = run_lifecycle(config_path, log_level="WARNING")
    assert fresh.lines[0].startswith("up to date:")
    assert not any("stale" in line for line in fresh.lines)
    # the run set them for its processes, and put them back
    assert {name: os.environ.get(name) for name in environment} == environment
    with Store(config.store_path).writing() as conn:  # deployed 100 days ago
        conn.execute("UPDATE deployments SET created_at = created_at - INTERVAL 100 DAY")
    old = run_lifecycle(config_path, log_level="WARNING")
    assert old.lines[0].startswith("up to date:")  # still no run...
    said = "warning: stale: the champion was deployed 100.0 days ago (limit 30)"
    assert said in "\n".join(old.lines)  # ...but said
    capsys.readouterr()
    assert cli(["--config", str(config_path), "status"]) == 0
    assert "  " + said in capsys.readouterr().out


def test_test_scores_of_the_other_candidates_only_on_request(tmp_path, deployed_digits, capfd):
    """A run reads the sealed test set for its chosen challenger only; `mllife status
    --show-test` reads it for the others, each read recorded."""
    from mllife.cli import main as cli

    config_path = copy_project(deployed_digits[0], tmp_path / "p")
    store = Store(load_config(config_path).store_path)
    reads = store.query("SELECT model_hash, asset FROM test_reads")
    chosen = store.champion().model_hash
    assert reads["model_hash"].to_list() == [chosen]  # the first run: the challenger's read
    assert reads["asset"].to_list() == ["challenger"]
    capfd.readouterr()
    assert cli(["--config", str(config_path), "status"]) == 0
    assert "read now" not in capfd.readouterr().out  # nothing shown, nothing read
    assert store.test_read_count() == 1
    assert cli(["--config", str(config_path), "status", "--show-test"]) == 0
    out = capfd.readouterr().out
    assert "sealed test set, shown on request" in out
    assert out.count("(read now)") == 2 and out.count("(challenger, read by its run)") == 1
    assert re.search(r"logreg\s+test accuracy 0\.\d{4} \[", out), out
    assert "has been read 3 times" in out
    shown = store.query("SELECT model_hash FROM test_reads WHERE asset = 'show-test'")
    assert shown.height == 2 and chosen not in shown["model_hash"].to_list()
