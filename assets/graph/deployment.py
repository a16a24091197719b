"""Deployment stage: the challenger (guarded by the promotion policy) and the champion."""

import dagster as dg

from assets.graph import pools
from assets.graph._metadata import frame_table, versioned_output
from assets.graph.resources import MllifeProject
from mllife._errors import PromotionError
from mllife.config.project import PromotionConfig
from mllife.data.split import SplitSet
from mllife.evaluation.candidate import CandidateEvaluation
from mllife.problems.scoring import ProblemScores
from mllife.promotion.challenger import (
    Challenger,
    choose_challenger,
    record_challenger,
    reevaluate,
)
from mllife.promotion.deploy import PromotionResult, promote
from mllife.promotion.policy import gate_descriptions


def build_challenger_asset(candidate_names: list[str]) -> dg.AssetsDefinition:
    ins = {f"evaluation_{n}": dg.AssetIn() for n in candidate_names}

    @dg.asset(
        pool=pools.CHAMPION,
        group_name="deployment",
        kinds={"duckdb"},
        ins={**ins, "splits": dg.AssetIn(), "problem_scores": dg.AssetIn()},
        description="The best candidate by the policy's selection metric on *validation*"
        " (never test), compared with the deployed champion on the same rows of the gate"
        " split (the sealed test set by default, each read recorded), and the promotion"
        " decision with every gate.",
    )
    def challenger(
        context: dg.AssetExecutionContext,
        project: MllifeProject,
        splits: SplitSet,
        problem_scores: ProblemScores,
        **evaluations: CandidateEvaluation,
    ) -> dg.Output[Challenger]:
        chosen = choose_challenger(
            list(evaluations.values()),
            splits,
            config=project.config,
            store=project.store,
            problems=problem_scores,
            run_id=context.run.run_id,
        )
        import polars as pl

        record_challenger(project.store, chosen, run_id=context.run.run_id)
        decision = chosen.decision
        context.log.info(f"challenger {chosen.evaluation.ref.name}: {decision.summary()}")
        metadata = {
            "challenger": chosen.evaluation.ref.name,
            "model_hash": chosen.evaluation.ref.model_hash,
            "decision": decision.summary(),
            "ranking": frame_table(
                pl.DataFrame(
                    list(chosen.ranking),
                    schema=["candidate", project.config.promotion.selection_metric],
                    orient="row",
                )
            ),
        }
        if chosen.comparison is not None:
            split = project.config.promotion.gate_split
            metadata["vs_champion"] = f"on {split}: {chosen.comparison.summary()}"
        return versioned_output(chosen, chosen.evaluation.ref.model_hash, metadata=metadata)

    return challenger


def build_policy_checks(policy: PromotionConfig) -> dg.AssetChecksDefinition:
    """One check per gate, so the UI shows exactly which gate stopped a model.

    Not blocking: a refusal is a normal outcome that still gets its report and its
    artifacts tracked, so the steps after the challenger must run. The champion step
    itself never promotes a refused challenger (``mllife.promotion.deploy.promote``)."""
    specs = [
        dg.AssetCheckSpec(name, asset="challenger", description=description)
        for name, description in gate_descriptions(policy).items()
    ]

    @dg.multi_asset_check(
        specs=specs, name="promotion_policy", description="The promotion policy, gate by gate."
    )
    def promotion_policy(project: MllifeProject, challenger: Challenger):
        # The policy as mllife.toml says now: after an edit (and a reload of the
        # definitions), re-executing these checks gives the new verdicts, no retraining.
        declared = {spec.name for spec in specs}

        def result(name: str, passed: bool, **metadata) -> dg.AssetCheckResult:
            return dg.AssetCheckResult(
                asset_key="challenger", check_name=name, passed=passed,
                severity=dg.AssetCheckSeverity.ERROR, metadata=metadata,
            )  # fmt: skip

        try:
            decision = reevaluate(challenger, project.config.promotion)
        except PromotionError as exc:
            for name in sorted(declared):
                yield result(name, False, summary=str(exc))
            return
        for name in sorted(declared - {g.name for g in decision.gates}):
            yield result(name, False, summary="no longer in the policy: reload the definitions")
        for gate in decision.gates:
            if gate.name in declared:  # else: added since the definitions loaded
                yield result(
                    gate.name, gate.passed, verdict="pass" if gate.passed else "FAIL",
                    applies=gate.applies, observed=gate.observed, threshold=gate.threshold,
                    summary=gate.reason,
                )  # fmt: skip

    return promotion_policy


@dg.asset(
    pool=pools.CHAMPION,
    deps=["drift_report"],  # drift is measured against the champion before this promotion
    group_name="deployment",
    kinds={"duckdb"},
    description="The deployed model. Promotion re-loads the challenger's artifact by hash,"
    " proves it reproduces its evaluation, then switches the champion in one store"
    " transaction (recorded in the deployment history). A challenger a gate refused"
    " leaves the champion as it is (action 'not promoted').",
)
def champion(
    context: dg.AssetExecutionContext,
    project: MllifeProject,
    challenger: Challenger,
    splits: SplitSet,
) -> dg.Output[PromotionResult]:
    result = promote(
        challenger, splits, config=project.config, store=project.store, run_id=context.run.run_id
    )
    current = result.champion
    if current is None:
        context.log.info(f"champion {result.action}: none deployed yet")
        return dg.Output(result, metadata={"action": result.action, "champion": "none"})
    context.log.info(f"champion {result.action}: {current.name} {current.model_hash[:12]}")
    return versioned_output(
        result,
        current.model_hash,
        metadata={
            "action": result.action,
            "champion": current.name,
            "model_hash": current.model_hash,
            "deployment_id": current.id,
            "previous_champion": current.previous_hash or "none",
            "verified_rows": result.verified_rows,
        },
    )
