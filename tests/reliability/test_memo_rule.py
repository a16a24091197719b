"""The up-to-date planner against its one rule, over random sequences of (edit, fault,
run) on a real Dagster instance: no asset below a failed blocking check is ever reused.

A toy graph stands in for the lifecycle (a -> b -> c, d beside c; blocking checks on a
and b) so that hypothesis can try many sequences in seconds; the planner under test is
the lifecycle's own (``assets.runtime.memo.plan_assets`` with ``not_accepted``)."""

from __future__ import annotations

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assets.runtime.memo import not_accepted, plan_assets

PARENTS = {"a": [], "b": ["a"], "c": ["b"], "d": ["b"]}
BLOCKING = {"a": ("a_ok",), "b": ("b_ok",)}


def _definitions(versions: dict[str, int], faults: set[str]) -> list:
    """The toy graph at these code versions, its checks failing where ``faults`` says."""

    def make(name: str):
        @dg.asset(
            name=name,
            code_version=str(versions[name]),
            deps=[dg.AssetKey(p) for p in PARENTS[name]],
        )
        def _asset(context) -> dg.Output[int]:
            # the data version follows the code version: an edit is new data downstream
            return dg.Output(versions[name], data_version=dg.DataVersion(str(versions[name])))

        return _asset

    def check(asset: str):
        (name,) = BLOCKING[asset]

        @dg.asset_check(asset=asset, name=name, blocking=True)
        def _check() -> dg.AssetCheckResult:
            return dg.AssetCheckResult(passed=asset not in faults)

        return _check

    return [make(n) for n in PARENTS] + [check(a) for a in BLOCKING]


def _plan(instance, versions):
    keys = [(dg.AssetKey(n), str(versions[n]), [dg.AssetKey(p) for p in PARENTS[n]])
            for n in PARENTS]  # fmt: skip
    return plan_assets(
        keys,
        instance,
        outside=lambda name, key, run_id, tags: not_accepted(instance, key, run_id, BLOCKING),
    )


def _accepted(instance, name: str) -> bool:
    """Whether the asset's latest materialization passed all of its blocking checks."""
    event = instance.get_latest_materialization_event(dg.AssetKey(name))
    return (
        event is not None
        and not_accepted(instance, dg.AssetKey(name), event.run_id, BLOCKING) is None
    )


def _ancestors(name: str) -> set[str]:
    found = set()
    for parent in PARENTS[name]:
        found |= {parent, *_ancestors(parent)}
    return found


steps = st.lists(
    st.one_of(
        st.tuples(st.just("edit"), st.sampled_from(sorted(PARENTS))),
        st.tuples(st.just("fault"), st.sampled_from(sorted(BLOCKING))),
        st.tuples(st.just("repair"), st.sampled_from(sorted(BLOCKING))),
        st.tuples(st.just("run"), st.none()),
    ),
    min_size=1,
    max_size=7,
)


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::UserWarning")
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=steps)
def test_no_asset_below_a_failed_blocking_check_is_ever_reused(tmp_path_factory, sequence):
    instance = dg.DagsterInstance.ephemeral(tempdir=str(tmp_path_factory.mktemp("memo_rule")))
    versions = dict.fromkeys(PARENTS, 0)
    faults: set[str] = set()
    for action, name in [*sequence, ("run", None), ("run", None)]:
        if action == "edit":
            versions[name] += 1
        elif action == "fault":
            faults.add(name)
        elif action == "repair":
            faults.discard(name)
        else:
            plan = _plan(instance, versions)
            reused = set(PARENTS) - {k.to_user_string() for k in plan.selection}
            for asset in reused:
                # a reused asset and everything it was computed from passed its checks
                for upstream in {asset, *_ancestors(asset)}:
                    assert _accepted(instance, upstream), (sequence, asset, upstream, plan)
            if plan.selection:
                dg.materialize(
                    _definitions(versions, faults),
                    instance=instance,
                    selection=list(plan.selection),
                    raise_on_error=False,
                )
    # a run of the same faulty graph fails the same way: what a check refused reruns
    refused = {n for n in PARENTS if not _accepted(instance, n)}
    selection = {k.to_user_string() for k in _plan(instance, versions).selection}
    assert refused <= selection, (sequence, refused, selection)
