"""staged_rollout: judges the staged challenger on the traffic logged since staging."""

import dagster as dg

from assets.graph import pools
from assets.graph.resources import MllifeProject
from mllife.promotion.rollout import promote_staged, staged_challenger, withdraw
from mllife.promotion.rollout_rule import judge, rollout_evidence


@dg.asset(
    pool=pools.CHAMPION,
    deps=["champion", "served_predictions"],  # after staging and after ingesting traffic
    group_name="deployment",
    kinds={"duckdb"},
    description="The staged challenger ([serving.rollout] stage = true) judged by the"
    " rollout rule on the predictions and feedback logged since it was staged: promoted"
    " (a deployment), withdrawn, or left to collect traffic. Every transition is recorded"
    " (`mllife status` shows them).",
)
def staged_rollout(context: dg.AssetExecutionContext, project: MllifeProject) -> dg.Output[dict]:
    config, store = project.config, project.store
    staged = staged_challenger(store)
    champion = store.champion()
    if staged is None or champion is None:
        return dg.Output({"state": "none"}, metadata={"state": "no challenger is staged"})
    evidence = rollout_evidence(store, staged, champion.model_hash)
    verdict, why = judge(evidence, config.serving.rollout)
    run_id = context.run.run_id
    if verdict == "promote":
        promote_staged(store, staged, reason=why, evidence=evidence, run_id=run_id)
        state = "promoted"
    elif verdict == "withdraw":
        withdraw(store, reason=why, evidence=evidence, run_id=run_id)
        state = "withdrawn"
    else:
        state = "staged"
    context.log.info(f"staged rollout of {staged.name} {staged.model_hash[:12]}: {state}: {why}")
    return dg.Output(
        {"state": state, "model_hash": staged.model_hash, "name": staged.name, "why": why},
        metadata={
            "state": state,
            "challenger": f"{staged.name} {staged.model_hash[:12]}",
            "staged_since": str(staged.since),
            "why": why,
            "evidence": evidence.describe(),
            "predictions": evidence.predictions,
            "labelled": evidence.feedback,
        },
    )
