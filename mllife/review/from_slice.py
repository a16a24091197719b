"""A weak slice kept as a known problem: ``mllife problems add NAME --from-slice N``.

The slice's rule becomes the problem's description and its members (validation rows of
the run that found it) its patterns, each expecting its true label, written into
``problems/<name>/problem.toml`` as a person would (``source = "slice"``). The next run
registers them and scores every stored model version on them, as for any problem.
"""

from __future__ import annotations

import json

import polars as pl

from mllife._errors import ProblemError
from mllife.evaluation.slices import latest_slices
from mllife.review.problem_files import ServedPattern, add_served_patterns

__all__ = ["problem_from_slice"]


def _slice_row(store, number: int) -> dict:
    slices = latest_slices(store)
    chosen = slices.filter(pl.col("number") == number)
    if chosen.height == 0:
        found = f"{slices.height} slice(s)" if slices.height else "no slice"
        raise ProblemError(
            f"no slice {number}: the latest run found {found}; `mllife slices` lists them"
        )
    return chosen.row(0, named=True)


def _patterns(config, raw, members: list[str], number: int) -> tuple[list[ServedPattern], int]:
    """The members' patterns, and how many members could not become one."""
    manifest = raw.manifest
    if config.data.kind == "images":
        chosen = manifest.filter(pl.col("path").is_in(members))
        patterns = [
            ServedPattern(f"slice {number}", label, "positive",
                          image=(config.root / path).read_bytes(), source="slice")
            for path, label in chosen.select("path", "label").iter_rows()
        ]  # fmt: skip
        return patterns, len(members) - len(patterns)
    if config.data.pii:
        raise ProblemError(
            f"the table has pii columns ({', '.join(config.data.pii)}): its rows cannot be"
            " written into a problem file (kept in the repository); add patterns by hand"
        )
    key = config.data.id or "sha256"
    sent = [n for n, spec in raw.columns.items() if not spec.derived]
    chosen = manifest.filter(pl.col(key).cast(pl.String).is_in(members))
    complete = chosen.drop_nulls(sent)  # a problem file cannot hold a missing value
    patterns = [
        ServedPattern(f"slice {number}", str(row.pop("label")), "positive", row=row,
                      source="slice")
        for row in complete.select([*sent, "label"]).to_dicts()
    ]  # fmt: skip
    return patterns, len(members) - len(patterns)


def problem_from_slice(
    config, store, *, number: int, name: str, classes: list[str], description: str | None = None
) -> tuple[int, int, str]:
    """Add slice ``number`` of the latest run to problem ``name``: (patterns added,
    members left out, the slice's rule)."""
    from mllife.data.stage import read_raw

    chosen = _slice_row(store, number)
    members = json.loads(chosen["members"])
    patterns, left_out = _patterns(config, read_raw(config), members, number)
    if not patterns:
        raise ProblemError(
            f"slice {number} ({chosen['description']}): none of its {len(members)} rows is in"
            " the data any more"
        )
    description = description or (
        f"Weak spot found by slice discovery (run {str(chosen['run_id'])[:8]}):"
        f" {chosen['description']}; accuracy {chosen['accuracy']:.2f} there,"
        f" {chosen['rest_accuracy']:.2f} elsewhere"
    )
    added = add_served_patterns(
        config, store, name, patterns, classes=classes, description=description
    )
    return added, left_out, chosen["description"]
