"""The monitoring part of the status report: drift of new data and of served inputs
(with a chart of each column's effect), served traffic, accuracy on served data from
feedback over time and users' ratings beside it, shadow agreement, and the champion's age."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from mllife.monitoring.batch import BatchDrift, Staleness
from mllife.reporting.blocks import Figure, Heading, Paragraph, ReportSection, Table, sentence
from mllife.reporting.plots import drift_effects_png, served_accuracy_png, served_ratings_png

__all__ = ["monitoring_section"]

_SCOPES = {"new_data": "New data since the deployment", "served": "Served inputs"}


def _drift_part(scope: str, result: BatchDrift, *, first_champion: bool, deployed: bool) -> list:
    title = _SCOPES.get(scope, scope)
    report = result.report
    if report is None:
        reason = result.reason
        if first_champion and result.before_any_champion:
            # drift ran before this run's champion step deployed the first champion
            reason = (
                "the first champion was deployed by this run: new data and served inputs"
                " are compared with its training data from the next run on"
            )
        elif deployed and result.before_any_champion:
            # measured (and kept, as nothing changed since) before the deployment
            reason = "no new data and no served inputs since the champion was deployed"
        return [Heading(title, 4), Paragraph(sentence(reason) + ".")]
    frame = report.to_frame()
    rows = [
        [
            r["column"],
            r["test"],
            f"{r['statistic']:.4f}",
            f"{r['p_adjusted']:.2g}",
            f"{r['effect']:.3f}",
            f"{r['psi']:.3f}",
            "DRIFT" if r["drifted"] else "",
        ]
        for r in frame.sort("effect", descending=True).iter_rows(named=True)
    ]
    chart = drift_effects_png(
        frame.select("column", "effect", "drifted"),
        min_effect=report.min_effect,
        title=f"{title}: {result.n_current} rows vs {result.n_reference} training rows",
    )
    return [
        Heading(title, 4),
        Paragraph(sentence(result.reason)),
        Figure(chart, f"drift effect per column: {title}"),
        Table.of(["column", "test", "statistic", "adjusted p", "effect", "PSI", "drifted"], rows),
    ]


@dataclass
class _Parts:
    """What the section accumulates: blocks, client sentences, steps."""

    blocks: list = field(default_factory=list)
    client: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks += blocks


def _drift(parts: _Parts, drift: dict[str, BatchDrift], first_champion: bool, deployed: bool):
    if (
        first_champion
        and drift
        and all(d.report is None and d.before_any_champion for d in drift.values())
    ):
        # one sentence for both scopes, not the same one under each heading
        parts.add(
            Heading("Drift", 4),
            Paragraph(
                "The first champion was deployed by this run: new data and served inputs are"
                " compared with its training data from the next run on."
            ),
        )
        return
    for scope in ("new_data", "served"):
        if scope not in drift:
            continue
        parts.add(
            *_drift_part(scope, drift[scope], first_champion=first_champion, deployed=deployed)
        )
        report = drift[scope].report
        if report is None or not report.drifted_columns:
            continue
        where = "new data" if scope == "new_data" else "the requests the model answers"
        changed = ", ".join(report.drifted_columns[:4])
        parts.client.append(
            f"The {where} no longer look like the data the model learned from ({changed} changed)."
            if report.dataset_drift
            else f"Part of {where} changed ({changed}): the model may be less"
            " reliable on such inputs."
        )
        parts.steps.append(
            f"Label a sample of the drifted {where} and retrain on it (`mllife run --job retrain`)."
        )


def _traffic(parts: _Parts, traffic: pl.DataFrame) -> None:
    if not traffic.height:
        parts.add(Heading("Served traffic", 4), Paragraph("No served predictions ingested yet."))
        return
    rows = [
        [r["model_name"], r["model"], r["role"], r["predictions"], f"{r['p50_ms']:.2f}",
         f"{r['p99_ms']:.2f}", r["last_seen"]]
        for r in traffic.iter_rows(named=True)
    ]  # fmt: skip
    header = ["model", "hash", "role", "predictions", "p50 ms", "p99 ms", "last seen"]
    parts.add(Heading("Served traffic", 4), Table.of(header, rows))


def _quality(parts: _Parts, quality: pl.DataFrame) -> None:
    if not quality.height:
        return
    rows = [
        [r["period"], r["model_name"], r["labelled"], f"{r['accuracy']:.3f}"]
        for r in quality.iter_rows(named=True)
    ]
    parts.add(
        Heading("Accuracy on served data (feedback labels)", 4),
        Figure(served_accuracy_png(quality), "accuracy on served data over time"),
        Table.of(["period", "model", "labelled", "accuracy"], rows),
    )
    latest = quality.sort("period").row(-1, named=True)
    parts.client.append(
        f"On real requests that users labelled, the model was right"
        f" {latest['accuracy']:.0%} of the time ({latest['labelled']} labels,"
        f" {latest['period']:%Y-%m-%d})."
    )


def _ratings(parts: _Parts, ratings: pl.DataFrame) -> None:
    if not ratings.height:
        return
    rows = [
        [r["period"], r["model_name"], r["model"], r["ratings"], f"{r['mean_rating']:.2f}",
         f"{r['low_share']:.0%}"]
        for r in ratings.iter_rows(named=True)
    ]  # fmt: skip
    parts.add(
        Heading("Users' ratings of served predictions", 4),
        Figure(served_ratings_png(ratings), "users' mean rating over time"),
        Table.of(["period", "model", "hash", "ratings", "mean (1-5)", "rated 1-2"], rows),
    )
    latest = ratings.sort("period").row(-1, named=True)
    if latest["low_share"] >= 0.2:
        parts.steps.append(
            f"{latest['low_share']:.0%} of {latest['model_name']}'s latest ratings are 1 or 2:"
            " review them at /review (`mllife review list`) and add what goes wrong to a"
            " known problem."
        )


def _shadow(parts: _Parts, shadow: pl.DataFrame) -> None:
    if not shadow.height:
        return

    def share(value):
        return "" if value is None else f"{value:.3f}"

    rows = [
        [r["shadow"], r["champion"], r["rows"], f"{r['agreement']:.3f}",
         share(r["shadow_accuracy"]), share(r["champion_accuracy"])]
        for r in shadow.iter_rows(named=True)
    ]  # fmt: skip
    header = ["shadow", "champion", "rows", "agreement", "shadow acc.", "champion acc."]
    parts.add(Heading("Shadow predictions vs the champion", 4), Table.of(header, rows))


def _freshness(parts: _Parts, age: Staleness) -> None:
    parts.add(Heading("Freshness", 4), Paragraph(sentence(age.reason) + "."))
    if not age.passed:
        parts.client.append(f"The deployed model is getting old: {age.reason}.")
        parts.steps.append("Retrain on recent data: the freshness policy is exceeded.")


def monitoring_section(
    drift: dict[str, BatchDrift],
    *,
    traffic: pl.DataFrame,
    quality: pl.DataFrame,
    shadow: pl.DataFrame,
    age: Staleness,
    ratings: pl.DataFrame | None = None,
    first_champion: bool = False,
    deployed: bool = False,
) -> ReportSection:
    """``first_champion``: this run deployed the first champion (after drift ran);
    ``deployed``: a champion is deployed now."""
    parts = _Parts()
    _drift(parts, drift, first_champion, deployed)
    _traffic(parts, traffic)
    _quality(parts, quality)
    if ratings is not None:
        _ratings(parts, ratings)
    _shadow(parts, shadow)
    _freshness(parts, age)
    return ReportSection("monitoring", "Monitoring", tuple(parts.blocks), parts.client, parts.steps)
