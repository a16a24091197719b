"""Deployment stage: the challenger (guarded by the promotion policy) and the champion."""

import dagster as dg

from assets._metadata import frame_md
from assets.resources import MllifeProject
from mllife.deployment import Challenger, PromotionResult, choose_challenger, promote
from mllife.evaluation import CandidateEvaluation
from mllife.split import SplitSet


def build_challenger_asset(candidate_names: list[str]) -> dg.AssetsDefinition:
    ins = {f"evaluation_{n}": dg.AssetIn() for n in candidate_names}

    @dg.asset(
        group_name="deployment",
        kinds={"duckdb"},
        ins={**ins, "splits": dg.AssetIn()},
        description="The best candidate by the policy's selection metric on *validation*"
        " (never test), compared with the deployed champion on the same rows, and the"
        " promotion decision with every gate.",
    )
    def challenger(
        context: dg.AssetExecutionContext,
        project: MllifeProject,
        splits: SplitSet,
        **evaluations: CandidateEvaluation,
    ) -> dg.Output[Challenger]:
        chosen = choose_challenger(
            list(evaluations.values()), splits, config=project.config, store=project.store
        )
        import polars as pl

        decision = chosen.decision
        context.log.info(f"challenger {chosen.evaluation.ref.name}: {decision.summary()}")
        metadata = {
            "challenger": chosen.evaluation.ref.name,
            "model_hash": chosen.evaluation.ref.model_hash,
            "decision": decision.summary(),
            "ranking": frame_md(
                pl.DataFrame(
                    list(chosen.ranking),
                    schema=["candidate", project.config.promotion.selection_metric],
                    orient="row",
                )
            ),
        }
        if chosen.comparison is not None:
            metadata["vs_champion"] = chosen.comparison.summary()
        return dg.Output(
            chosen, data_version=dg.DataVersion(chosen.evaluation.ref.model_hash), metadata=metadata
        )

    return challenger


@dg.asset_check(
    asset="challenger",
    blocking=True,
    description="The promotion policy: accuracy baseline, validation/test agreement, beats"
    " the champion. If it fails the champion is not touched.",
)
def promotion_policy(challenger: Challenger) -> dg.AssetCheckResult:
    decision = challenger.decision
    metadata: dict = {"summary": decision.summary(), "first_run": decision.first_run}
    for gate in decision.gates:
        metadata[f"gate_{gate.name}"] = dg.MetadataValue.json(
            {
                "passed": gate.passed,
                "observed": gate.observed,
                "threshold": gate.threshold,
                "reason": gate.reason,
            }
        )
    return dg.AssetCheckResult(passed=decision.passed, metadata=metadata)


@dg.asset(
    group_name="deployment",
    kinds={"duckdb"},
    description="The deployed model. Promotion re-loads the challenger's artifact by hash,"
    " proves it reproduces its evaluation, then switches the champion in one store"
    " transaction (recorded in the deployment history).",
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
    context.log.info(
        f"champion {result.action}: {result.champion.name} {result.champion.model_hash[:12]}"
    )
    return dg.Output(
        result,
        data_version=dg.DataVersion(result.champion.model_hash),
        metadata={
            "action": result.action,
            "champion": result.champion.name,
            "model_hash": result.champion.model_hash,
            "deployment_id": result.champion.id,
            "previous_champion": result.champion.previous_hash or "none",
            "verified_rows": result.verified_rows,
        },
    )
