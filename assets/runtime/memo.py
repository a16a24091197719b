"""Which assets of the lifecycle a run must materialize: the ones whose code, config or
inputs changed since their latest materialization, and everything downstream of them.

Keyed the way Dagster keys staleness, from the instance's event log: an asset is stale
when it was never materialized, when its code version (``assets/graph/code_versions.py``: its
code and the config it reads) differs from the one recorded with its latest
materialization, or when an upstream asset's latest data version differs from the input
data version recorded then. A materialization counts only when it was accepted: every
blocking check of the asset passed on *that* materialization and no later attempt to
materialize it failed. Anything else is stale with everything below it, so a second run
of a faulty project fails exactly as the first did instead of reusing what the checks
refused.

Three assets look at the world: ``raw_data`` (the data on disk, versioned through the
stat caches), ``problem_scores`` (the known problems: files and registry) and
``served_predictions`` (log segments waiting to be ingested). The UI shows the same
assets as stale.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import dagster as dg

from assets.graph.acceptance import BLOCKING_CHECKS, PROBLEMS_VERSION_TAG
from mllife.config.project import ProjectConfig

__all__ = [
    "BLOCKING_CHECKS",
    "Plan",
    "not_accepted",
    "plan_assets",
    "plan_run",
    "up_to_date",
    "up_to_date_lines",
]

_INPUT_TAG = "dagster/input_data_version/"


@dataclass(frozen=True)
class Plan:
    #: the assets to materialize, in the job's order; empty: everything is up to date
    selection: tuple[dg.AssetKey, ...]
    #: why each asset that changed by itself is stale (its descendants follow it)
    reasons: dict[str, str]
    skipped: int

    def summary(self) -> str:
        """The run's last line: what reran and why, and the model fits."""
        ran = {k.to_user_string() for k in self.selection}
        fits = sum(name.startswith("candidate_") for name in ran)
        why = "; ".join(f"{name}: {reason}" for name, reason in self.reasons.items())
        return (
            f"{self.skipped} assets up to date, not rerun; {len(ran)} rerun ({why});"
            f" model fits: {fits}"
        )


def up_to_date_lines(config: ProjectConfig, last_run_id: str, plan: Plan) -> list[str]:
    """What `mllife run` says when nothing changed: no run, which champion stands."""
    from mllife.monitoring.batch import STALE_ADVICE, staleness
    from mllife.storage.store import Store

    store = Store(config.store_path)
    champion = store.champion()
    stands = (
        f"champion {champion.name} {champion.model_hash[:12]} stands"
        if champion is not None
        else "no champion is deployed"
    )
    lines = [
        "up to date: the data, code and configuration are unchanged since the last run"
        f" ({last_run_id or 'none'}); {stands}",
        f"{plan.skipped} assets up to date, 0 rerun; model fits: 0"
        " (`mllife run --force` reruns all)",
    ]
    # an unchanged project starts no run, so the champion's age is checked here too
    age = staleness(config, store)
    if champion is not None and not age.passed:
        lines.append(f"warning: stale: {age.reason}; {STALE_ADVICE}")
    return lines


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey) -> tuple[dict | None, str | None]:
    """The tags and run of the asset's latest materialization (None, None: never)."""
    return _tags_and_run(instance.get_latest_materialization_event(key))


def _latest_of(instance: dg.DagsterInstance, keys) -> dict:
    """``_latest`` of each key, in one query of the event log (none for no keys)."""
    if not keys:
        return {}
    events = instance.get_latest_materialization_events(keys)
    return {key: _tags_and_run(events.get(key)) for key in keys}


def _tags_and_run(event) -> tuple[dict | None, str | None]:
    if event is None:
        return None, None
    return dict(event.asset_materialization.tags or {}), event.run_id


def _evaluation(record):
    """The check evaluation a record holds, or None (planned, or never evaluated)."""
    event = record.event if record is not None else None
    if event is None or event.dagster_event is None:
        return None
    data = event.dagster_event.event_specific_data
    return data if isinstance(data, dg.AssetCheckEvaluation) else None


def not_accepted(
    instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str, blocking: dict
) -> str | None:
    """Why the asset's latest materialization (made by ``run_id``) was not accepted: one
    of its ``blocking`` checks failed on it or never ran on it, or a later attempt to
    materialize the asset failed. None: accepted."""
    for check_name in blocking.get(key.to_user_string(), ()):
        record = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(key, check_name)
        )
        evaluation = _evaluation(record)
        target = evaluation.target_materialization_data if evaluation else None
        if evaluation is None or target is None or target.run_id != run_id:
            return f"its blocking check {check_name} never passed on its latest result"
        if not evaluation.passed:
            return f"its blocking check {check_name} failed (run {run_id[:8]})"
    failed = instance.fetch_failed_materializations(key, limit=1).records
    if failed and failed[0].run_id != run_id:
        latest = instance.fetch_materializations(key, limit=1).records
        if latest and failed[0].storage_id > latest[0].storage_id:
            return f"its step failed in run {failed[0].run_id[:8]}"
    return None


def _unusable(name: str, key: dg.AssetKey, run_id: str, tags: dict, config) -> str | None:
    """Why the asset's stored result cannot be reused (gone, or failing its check), or
    None. A result that would be reused is verified first, never trusted blindly."""
    from assets.graph import step_outputs

    why = step_outputs.for_project(config).unusable(run_id, key)
    if why is None and name.startswith("candidate_"):
        from mllife.storage.files import sha256_of

        model_hash = tags.get("dagster/data_version", "")
        artifact = next(config.artifacts_dir.glob(f"models/{model_hash}.*"), None)
        if artifact is None or sha256_of(artifact) != model_hash:
            why = f"its model artifact {model_hash[:12]} is gone or changed"
    return why


def _world_changed(name: str, tags: dict[str, str], config: ProjectConfig) -> str | None:
    """Why the world outside the code and config makes ``name`` stale, or None."""
    if name == "raw_data":
        from mllife.data.stage import current_data_version

        now = current_data_version(config)
        if now != tags.get("dagster/data_version"):
            return f"the data changed (version {now})"
    if name == "problem_scores":
        from mllife.problems.fingerprint import problems_version

        # A known problem added, edited or removed: scored for every stored model version
        # (its files are read and checked whole first: one that does not fit fails the
        # step with the reason, and nothing of it is registered).
        if problems_version(config) != tags.get(PROBLEMS_VERSION_TAG):
            return "the known problems changed"
    if name == "served_predictions":
        from mllife.monitoring.traffic import pending_segments

        if n := pending_segments(config):
            return f"{n} served-prediction log segment(s) to ingest"
    return None


def plan_run(graph, instance: dg.DagsterInstance, config: ProjectConfig, found=None) -> Plan:
    """The plan for the lifecycle job (every asset), from the code location's asset graph.
    ``found``: the latest materializations ``up_to_date`` read just before (not read
    twice)."""
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_executable]
    assets = [(k, graph.get(k).code_version, sorted(graph.get(k).parent_keys)) for k in keys]
    return _plan(assets, instance, config, found)


def up_to_date(instance: dg.DagsterInstance, config: ProjectConfig, found=None) -> Plan | None:
    """The empty plan when nothing changed, found without importing the asset graph (its
    imports take seconds): code versions from the files, each asset's inputs from the
    tags of its latest materialization. None: something changed (or the graph is new),
    so the full plan decides. ``found`` (a dict) keeps the materializations read."""
    from assets.graph.code_versions import expected_code_versions

    assets, found = [], found if found is not None else {}
    expected = expected_code_versions(config)
    found.update(_latest_of(instance, [dg.AssetKey(name) for name in expected]))
    for name, version in expected.items():
        key = dg.AssetKey(name)
        recorded = found[key][0]
        if recorded is None:
            return None
        parents = [
            dg.AssetKey(t.removeprefix(_INPUT_TAG)) for t in recorded if t.startswith(_INPUT_TAG)
        ]
        assets.append((key, version, parents))
    plan = _plan(assets, instance, config, found)
    return plan if not plan.selection else None


def _plan(assets, instance: dg.DagsterInstance, config: ProjectConfig, found=None) -> Plan:
    def outside(name: str, key: dg.AssetKey, run_id: str, tags: dict) -> str | None:
        if why := _world_changed(name, tags, config):
            return why
        if why := not_accepted(instance, key, run_id, BLOCKING_CHECKS):
            return why
        if why := _unusable(name, key, run_id, tags, config):
            print(f"mllife: warning: {name}: {why}; recomputing it", file=sys.stderr)
        return why

    return plan_assets(assets, instance, found=found, outside=outside)


def plan_assets(assets, instance: dg.DagsterInstance, *, found=None, outside) -> Plan:
    """The plan over ``assets``: (key, code version, parent keys), upstream first.
    ``found``: their latest materializations' (tags, run), when already read;
    ``outside(name, key, run_id, tags)``: why an asset whose code and inputs are unchanged
    must still rerun (the world changed, its result was not accepted or is gone), or None."""
    keys = [key for key, _, _ in assets]
    found = found or {}
    found = {**_latest_of(instance, [k for k in keys if k not in found]), **found}
    tags = {key: tags_and_run[0] for key, tags_and_run in found.items()}
    stale: set[dg.AssetKey] = set()
    reasons: dict[str, str] = {}
    for key, version, parents in assets:
        name, recorded = key.to_user_string(), tags[key]
        if recorded is None:
            why = "never materialized"
        elif recorded.get("dagster/code_version") != version:
            why = "its code or configuration changed"
        else:
            why = outside(name, key, found[key][1], recorded)
            for parent in parents:
                if why is not None:
                    break
                if parent in stale:
                    stale.add(key)  # follows its upstream: no reason of its own
                    break
                if parent not in tags:
                    tags[parent] = _latest(instance, parent)[0]
                current = (tags.get(parent) or {}).get("dagster/data_version")
                if current != recorded.get(_INPUT_TAG + parent.to_user_string()):
                    why = f"upstream {parent.to_user_string()} changed"
        if why is not None:
            stale.add(key)
            reasons[name] = why
    selection = tuple(k for k in keys if k in stale)
    return Plan(selection, reasons, len(keys) - len(selection))
