"""Scoring model versions on every pattern, caching each (model, pattern) result in the
store, so a re-run costs only the pairs it has not seen."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import polars as pl

from mllife._errors import ArtifactError, DataError

if TYPE_CHECKING:
    from mllife.models.registry import ModelRef

__all__ = ["ScoreResult", "VersionScoring"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ScoreResult:
    new_pairs: int
    models_scored: int
    #: (model hash, why it could not be scored), e.g. its artifact is gone
    skipped: tuple[tuple[str, str], ...] = ()


def _take(inputs, positions: pl.Series):
    """The inputs at ``positions``: a list of image bytes, or rows of a table."""
    if isinstance(inputs, pl.DataFrame):
        return inputs[positions.to_list()]
    return [inputs[i] for i in positions.to_list()]


def _judged(model, inputs, patterns: pl.DataFrame, todo: pl.DataFrame):
    """(predicted label, correct) per pattern of ``todo``: correct when the label is the
    expected one; for a directional pattern, when its probability of the named class is
    not above its original's (``mllife.problems.behaviour``)."""
    from mllife.problems.behaviour import directional_target

    proba = model.predict_proba(_take(inputs, todo["_i"]))
    classes = [str(c) for c in model.classes]
    predicted = [classes[i] for i in proba.argmax(axis=1)]
    correct = [p == e for p, e in zip(predicted, todo["expected"], strict=True)]
    targets = [directional_target(e) for e in todo["expected"]]
    if any(targets):
        position = dict(zip(patterns["pattern_hash"], patterns["_i"], strict=True))
        wanted = [position[t[1]] for t in targets if t is not None]
        original = model.predict_proba(_take(inputs, pl.Series(wanted)))
        for j, k in zip([j for j, t in enumerate(targets) if t], range(len(wanted)), strict=True):
            column = classes.index(targets[j][0])
            correct[j] = bool(proba[j, column] <= original[k, column] + 1e-9)
    return predicted, correct


class VersionScoring:
    """Scoring of :class:`~mllife.problems.registry.ProblemRegistry` (a mixin)."""

    def _inputs(self, rows: pl.DataFrame):
        paths = [self.config.shared_dir / p for p in rows["input_path"].to_list()]
        if self.config.data.kind == "images":
            return [p.read_bytes() for p in paths]
        return pl.DataFrame([json.loads(p.read_text()) for p in paths])

    def score(self, models: list[ModelRef]) -> ScoreResult:
        """Score each model on every pattern it has no result for yet."""
        # imported here: the registry's other commands (list, show, add) need no torch
        from mllife.models.registry import load_model
        from mllife.models.training import place_model

        patterns = self.store.query(
            "SELECT DISTINCT pattern_hash, input_path, expected FROM patterns"
        )
        if patterns.height == 0 or not models:
            return ScoreResult(0, 0)
        done = self.store.query(
            "SELECT model_hash, pattern_hash FROM pattern_results WHERE model_hash IN"
            " (SELECT unnest(?))",
            [[m.model_hash for m in models]],
        )
        scored_by_model: dict[str, set[str]] = {}
        for model_hash, pattern_hash in done.iter_rows():
            scored_by_model.setdefault(model_hash, set()).add(pattern_hash)
        patterns = patterns.with_row_index("_i")
        inputs = None  # every pattern's input, read once and only if some pair is new
        new_pairs, scored, skipped = 0, 0, []
        for ref in models:
            todo = patterns.filter(
                ~pl.col("pattern_hash").is_in(list(scored_by_model.get(ref.model_hash, ())))
            )
            if todo.height == 0:
                continue
            if inputs is None:
                inputs = self._inputs(patterns)
            try:
                model = load_model(ref, artifacts_dir=self.config.artifacts_dir, store=self.store)
                place_model(model, self.config)
            except ArtifactError as exc:
                skipped.append((ref.model_hash, str(exc)))
                continue
            try:
                predicted, correct = _judged(model, inputs, patterns, todo)
            except (DataError, ValueError) as exc:
                skipped.append((ref.model_hash, f"cannot predict on the patterns: {exc}"))
                continue
            now = _now()
            with self.store.writing() as conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO pattern_results VALUES (?, ?, ?, ?, ?)",
                    [
                        [ref.model_hash, h, p, c, now]
                        for h, p, c in zip(todo["pattern_hash"], predicted, correct, strict=True)
                    ],
                )
            new_pairs += todo.height
            scored += 1
        return ScoreResult(new_pairs, scored, tuple(skipped))
