"""Scoring every model version on the known problems, for the problem_scores asset."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from mllife.config.project import ProjectConfig
from mllife.models.registry import ModelRef
from mllife.problems.registry import ProblemRegistry
from mllife.storage.store import Store

__all__ = ["ProblemScores", "score_all"]


@dataclass(frozen=True)
class ProblemScores:
    """What the problem_scores asset hands on: history and each new candidate's scores."""

    history: pl.DataFrame
    new_pairs: int
    skipped: tuple[tuple[str, str], ...]
    #: model hash -> problem -> accuracy on all its patterns
    scores: dict[str, dict[str, float]]
    minimums: dict[str, float]
    patterns_added: int

    def of(self, model_hash: str | None) -> dict[str, float]:
        return dict(self.scores.get(model_hash, {})) if model_hash else {}


def score_all(
    config: ProjectConfig, store: Store, *, new_models: list[ModelRef], classes
) -> ProblemScores:
    """Register the repository's problem files, then score the new candidates and every
    earlier model version on the patterns each has no result for."""
    registry = ProblemRegistry(config, store)
    added = 0
    if config.problems_dir.is_dir():
        added = registry.sync_from_files(config.problems_dir, classes=classes)
    new_hashes = {m.model_hash for m in new_models}
    earlier = [
        ModelRef.from_row(r)
        for r in store.models().iter_rows(named=True)
        if r["model_hash"] not in new_hashes
    ]
    result = registry.score([*new_models, *earlier])
    problems = registry.problems()
    minimums = {
        n: float(m)
        for n, m in zip(problems["name"], problems["min_score"], strict=True)
        if m is not None
    }
    champion = store.champion()
    wanted = [*new_hashes, *([champion.model_hash] if champion else [])]
    return ProblemScores(
        history=registry.history(),
        new_pairs=result.new_pairs,
        skipped=result.skipped,
        scores={h: registry.scores_of(h) for h in wanted},
        minimums=minimums,
        patterns_added=added,
    )
