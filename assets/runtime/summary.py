"""The few lines `mllife run` prints about a run: data, each candidate's metrics, the
decision, the champion, the report, failed checks and steps."""

from __future__ import annotations

import dagster as dg

from assets.graph import step_outputs
from mllife.config.project import ProjectConfig
from mllife.data.dropped import describe_dropped
from mllife.data.text_cleaning import markup_note

__all__ = ["StoredValues", "summarize"]


class StoredValues:
    """What a run stored per asset, each loaded (unpickled) at most once: from its own
    storage when it materialized the asset, else from the nearest resumed run that did;
    None for a failed or skipped step."""

    def __init__(
        self, result, config: ProjectConfig, *, failed: set[str], resumed: list[str],
        instance=None,
    ):  # fmt: skip
        self.result, self.failed, self.resumed = result, failed, resumed
        self.instance = instance

        self._storage = step_outputs.for_project(config)
        self._materialized = {
            e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
        }
        self._loaded: dict[str, object] = {}
        self._steps: set[str] | None = None
        #: assets loaded from an earlier run's materialization (up to date): key -> run
        self.reused: dict[str, str] = {}

    @property
    def materialized(self) -> set[str]:
        """The assets this run materialized itself."""
        return set(self._materialized)

    def _planned(self) -> set[str]:
        """The steps the run was to execute (an asset's step key is its name)."""
        if self._steps is None:
            snapshot_id = self.result.dagster_run.execution_plan_snapshot_id
            plan = self.instance.get_execution_plan_snapshot(snapshot_id)
            self._steps = set(plan.step_keys_to_execute)
        return self._steps

    def get(self, key: str):
        if key not in self._loaded:
            self._loaded[key] = self._load(key)
        return self._loaded[key]

    def _load(self, key: str):
        if key in self._materialized:
            return self._storage.load_value(self.result.run_id, key)
        if key in self.failed:
            return None
        for run_id in self.resumed:
            if self._storage.path_for(run_id, dg.AssetKey(key)).is_file():
                return self._storage.load_value(run_id, key)
        if self.instance is not None and not self.resumed:
            if key in self._planned():
                return None  # this run was to materialize it and did not get there
            # up to date or not in this job: its latest materialization's value (lineage)
            event = self.instance.get_latest_materialization_event(dg.AssetKey(key))
            if (
                event is not None
                and self._storage.path_for(event.run_id, dg.AssetKey(key)).is_file()
            ):
                self.reused[key] = event.run_id
                return self._storage.load_value(event.run_id, key)
        return None


def _candidate_lines(
    config: ProjectConfig, value, failed: set[str], skipped: set[str], *, ended_early: bool
) -> list[str]:
    lines = []
    width = max(len(spec.name) for spec in config.models_to_train)
    for spec in config.models_to_train:
        evaluation = value(f"evaluation_{spec.name}")
        name = f"{spec.name:<{width}}"
        if evaluation is None:
            steps = {f"candidate_{spec.name}", f"evaluation_{spec.name}"}
            if steps & failed:
                why = "its step failed: see below"
            elif steps & skipped:
                why = "skipped: a blocking check before it failed, see below"
            elif ended_early:
                why = "not reached: the run ended before it, see below"
            else:
                why = "not part of this run"
            lines.append(f"  {name}  not evaluated ({why})")
            continue
        v = evaluation.validation
        chosen = value("challenger")
        if chosen is not None and chosen.evaluation.ref.model_hash == evaluation.ref.model_hash:
            t = chosen.evaluation.test
            test = f" | test accuracy {t.accuracy:.4f} macro F1 {t.macro_f1:.4f} (challenger)"
        else:
            test = ""  # sealed: read for the chosen challenger only
        lines.append(
            f"  {name}  validation accuracy {v.accuracy:.4f} macro F1 {v.macro_f1:.4f}{test}"
        )
    return lines


def _fit_lines(config: ProjectConfig, result, values: StoredValues) -> list[str]:
    """How many models this run fit: its candidate steps and their search trials."""
    trained = sorted(
        key.removeprefix("candidate_")
        for key in values.materialized
        if key.startswith("candidate_")
    )
    if not trained:
        return ["models fit: none in this run"]
    from mllife.storage.store import Store

    trials = Store(config.store_path).query(
        "SELECT count(*) AS n FROM trials WHERE run_id = ?", [result.run_id]
    )["n"][0]
    plural = "s" if len(trained) != 1 else ""
    return [f"models fit: {len(trained)} candidate{plural} ({', '.join(trained)}), {trials} trials"]


def _decision_lines(challenger, champion) -> list[str]:
    lines = []
    if challenger is not None:
        decision = challenger.decision
        said = decision.summary()
        if champion is not None and champion.action == "staged":
            said = "passed every gate; staged, not promoted yet"
        lines.append(f"challenger {challenger.evaluation.ref.name}: {said}")
        lines += [f"  gate {g.name} FAILED: {g.reason}" for g in decision.failed_gates()]
    if champion is not None and champion.action == "staged":
        c = champion.champion
        lines.append(
            f"challenger staged for rollout (shadow or canary traffic until the rollout"
            f" rule decides); champion stays: {c.name} {c.model_hash[:12]}"
        )
    elif champion is not None and champion.action == "not promoted":
        c = champion.champion
        lines.append(f"champion unchanged: {c.model_hash[:12] if c else 'none deployed yet'}")
    elif champion is not None:
        c = champion.champion
        lines.append(f"champion ({champion.action}): {c.name} {c.model_hash[:12]}")
    elif challenger is not None:
        current = challenger.decision.champion_hash
        lines.append(f"champion unchanged: {current[:12] if current else 'none deployed yet'}")
    return lines


def _check_lines(result) -> list[str]:
    lines = []
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed or evaluation.asset_key == dg.AssetKey("challenger"):
            continue  # the policy's gates are listed with the decision
        level = "WARNING" if evaluation.severity == dg.AssetCheckSeverity.WARN else "FAILED"
        name = f"{evaluation.asset_key.to_user_string()}.{evaluation.check_name}"
        meta = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        detail = meta.get("summary") or meta.get("reason") or ""
        lines.append(f"check {name} {level}: {detail}".rstrip(": "))
        examples = evaluation.metadata.get("failing_examples")
        for record in getattr(examples, "records", None) or []:
            cells = ", ".join(f"{k}={v}" for k, v in record.data.items() if v is not None)
            lines.append(f"  {cells}")
    return lines


def _lost_step(event) -> bool:
    """An engine event with an error for one step: a step whose executor lost it (its
    Celery task failed on the worker) and so has no failure event of its own."""
    data = event.engine_event_data if event.event_type == dg.DagsterEventType.ENGINE_EVENT else None
    return bool(event.step_key and data is not None and data.error is not None and event.message)


def _failure_lines(result) -> list[str]:
    lines = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            message = error.cause.message if error and error.cause else error.message
            lines.append(f"FAILED {event.step_key}: {message.strip()}")
        elif _lost_step(event):
            lines.append(f"FAILED {event.step_key}: {event.message.strip()}")
    if not result.success and not lines:
        # no step failed: the run itself ended (its worker died, it was terminated)
        lines += [f"FAILED run: {message}" for message in result.run_failure_messages()]
    return lines


def summarize(result, config: ProjectConfig, values: StoredValues, *, refused: bool) -> list[str]:
    """The run's outcome in a few lines; a step it did not re-run (resumed) is reported
    with what the run that did it stored."""
    resumed = values.resumed
    status = (
        "challenger refused" if refused
        else "success" if result.success
        else "terminated" if result.dagster_run.status == dg.DagsterRunStatus.CANCELED
        else "FAILED"
    )  # fmt: skip
    lines = [f"run {result.run_id}: {status}"]
    if resumed:
        lines.append(
            f"resumes run {resumed[0]}: steps done there are not re-run; their results below"
            " are the ones it stored"
        )
    value = values.get
    splits = value("splits")
    if splits is not None:
        sizes = ", ".join(f"{name} {n}" for name, n in splits.sizes().items())
        lines.append(f"data version {splits.data_version}; split sizes: {sizes}")
        near = splits.near_duplicates
        if near is not None and (near.n_leaks or any(near.within.values())):
            lines.append(f"near-duplicates: {near.describe()}")
    clean = value("clean_data")
    if clean is not None and clean.dropped.height:
        lines.append(f"cleaning dropped {clean.dropped.height}:")
        lines += [f"  {line}" for line in describe_dropped(clean.dropped)]
    if clean is not None and (markup := markup_note(clean.rows, clean.columns)):
        lines.append(f"cleaning: {markup}")
    skipped = {
        e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SKIPPED
    }
    lines += _candidate_lines(
        config, value, values.failed, skipped, ended_early=not result.success and not values.failed
    )
    lines += _fit_lines(config, result, values)
    if "challenger" in values.reused:
        # up to date: the decision was made by an earlier run, not this one
        champion = value("champion")
        standing = (
            ""
            if champion is None or champion.champion is None
            else (f"; champion {champion.champion.name} {champion.champion.model_hash[:12]}")
        )
        lines.append(
            f"no new decision: the challenger is up to date since run"
            f" {values.reused['challenger'][:8]}{standing}"
        )
    else:
        lines += _decision_lines(value("challenger"), value("champion"))
    rollout = value("staged_rollout")
    if rollout is not None and rollout["state"] != "none":
        lines.append(
            f"staged rollout of {rollout['name']} {rollout['model_hash'][:12]}:"
            f" {rollout['state']} ({rollout['why']})"
        )
    drift, champion = value("drift_report"), value("champion")
    if (
        drift is not None
        and champion is not None
        and champion.action == "promoted"
        and all(d.before_any_champion for d in drift.values())
    ):
        # drift ran before this run deployed the first champion
        lines.append("drift: measured from the next run on (this run deployed the first champion)")
    elif drift is not None and "drift_report" in values.reused:
        lines.append(
            f"drift: not measured again (no new data or served inputs since run"
            f" {values.reused['drift_report']})"
        )
    elif drift is not None:
        for scope, what in (("new_data", "new data"), ("served", "served inputs")):
            lines.append(f"drift of {what}: {drift[scope].reason}")
    report = value("status_report")
    if report is not None:
        lines.append(f"report: {report.path}")
    return lines + _check_lines(result) + _failure_lines(result)
