"""The known-problems part of the status report: how each problem is going, in words and
in a chart, with a small gallery of each problem's patterns and the model's verdicts."""

from __future__ import annotations

import polars as pl

from mllife.problems.registry import ProblemRegistry
from mllife.problems.scoring import ProblemScores
from mllife.reporting.blocks import (
    Figure,
    Heading,
    Paragraph,
    ReportSection,
    Table,
    Tile,
    Tiles,
)
from mllife.reporting.gallery import thumbnail
from mllife.reporting.plots import problem_history_png

__all__ = ["problem_section"]

GALLERY_PER_PROBLEM = 8


#: words that make a known problem a colour problem (the articles' "colour mood",
#: "Instagram filter"), for which colour jitter is the countermeasure
_COLOUR_WORDS = ("colour", "color", "filter", "tint", "hue", "sepia", "saturat", "invert")


def _steps_for_a_failing_problem(name: str, description: str) -> list[str]:
    steps = [
        f"Examples like '{name}' are mostly misclassified: add such"
        " examples to the training data or augment it accordingly."
    ]
    text = f"{name} {description}".lower()
    if any(word in text for word in _COLOUR_WORDS):
        steps.append(
            f"'{name}' is about colour: vary the colours of the training images"
            " randomly (augment = { color_jitter = 0.3 } on a torch candidate), so"
            " the model cannot rely on a colour mood or a filter."
        )
    return steps


def _pattern_tiles(registry: ProblemRegistry, name: str, part: pl.DataFrame) -> list:
    """The problem's first patterns as thumbnails with the challenger's verdicts."""
    tiles = []
    for item in part.head(GALLERY_PER_PROBLEM).iter_rows(named=True):
        data = (registry.config.shared_dir / item["input_path"]).read_bytes()
        verdict = "right" if item["correct"] else f"said {item['predicted']}"
        caption = f"{item['kind']}: {item['expected']}, {verdict}"
        tiles.append(Tile(thumbnail(data, alt=item["origin"]), (caption,)))
    return [Heading(name, 4), Tiles(tuple(tiles))]


def problem_section(
    registry: ProblemRegistry,
    scores: ProblemScores,
    *,
    challenger_hash: str,
    champion_hash: str | None,
) -> ReportSection:
    problems = registry.problems()
    if problems.height == 0:
        return ReportSection()
    results = registry.store.query(
        "SELECT t.problem, t.kind, t.expected, t.origin, t.input_path, r.predicted,"
        " r.correct FROM patterns t JOIN pattern_results r USING (pattern_hash)"
        " WHERE r.model_hash = ? ORDER BY t.problem, t.kind DESC, t.created_at",
        [challenger_hash],
    )
    ours = scores.of(challenger_hash)
    before = scores.of(champion_hash) if champion_hash != challenger_hash else {}
    origins = registry.store.query(
        "SELECT problem, count(*) FILTER (WHERE source = 'production') AS production,"
        " count(*) AS patterns FROM patterns GROUP BY problem"
    )
    from_production = {r["problem"]: r["production"] for r in origins.iter_rows(named=True)}
    rows, client, steps, tiles = [], [], [], []
    for problem in problems.iter_rows(named=True):
        name = problem["name"]
        part = results.filter(pl.col("problem") == name)
        positives = part.filter(pl.col("kind") == "positive")
        right = int(positives["correct"].sum()) if positives.height else 0
        was = f" (the deployed model: {before[name]:.0%})" if name in before else ""
        rows.append(
            [
                name,
                f"{ours.get(name, float('nan')):.2f}",
                f"{before[name]:.2f}" if name in before else "",
                f"{right}/{positives.height}",
                f"{from_production.get(name, 0)} of {problem['patterns']}",
                problem["min_score"] or "",
            ]
        )
        client.append(
            f"Known problem '{name}' ({problem['description']}): the model gets"
            f" {right} of {positives.height} such examples right{was}."
        )
        if positives.height and right / positives.height < 0.5:
            steps += _steps_for_a_failing_problem(name, problem["description"])
        if registry.config.data.kind == "images":
            tiles += _pattern_tiles(registry, name, part)
    header = ["problem", "accuracy", "champion", "positives right", "from production",
              "min score"]  # fmt: skip
    production = sum(from_production.values())
    blocks = [
        Table.of(header, rows),
        Paragraph(
            f"{production} of {int(problems['patterns'].sum())} patterns came from production"
            " (served inputs added at the review desk, or imported as production examples)."
        ),
        Heading("Error rate per problem across model versions"),
        Figure(problem_history_png(scores.history), "problem history"),
    ]
    if tiles:
        blocks += [Heading("Patterns and the challenger's verdicts"), *tiles]
    return ReportSection("problems", "Known problems", tuple(blocks), client, steps)
