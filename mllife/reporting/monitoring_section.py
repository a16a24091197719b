"""The monitoring part of the status report: drift of new data and of served inputs
(with a chart of each column's effect), served traffic, accuracy on served data from
feedback over time, shadow agreement, and the champion's age."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import polars as pl

from mllife.monitoring.batch import BatchDrift, Staleness
from mllife.reporting.html import ReportSection, image_tag, table
from mllife.reporting.plots import drift_effects_png, served_accuracy_png

__all__ = ["MonitoringSection", "monitoring_section"]

_SCOPES = {"new_data": "New data since the deployment", "served": "Served inputs"}


#: what the monitoring part adds to the report
MonitoringSection = ReportSection


def _drift_part(scope: str, result: BatchDrift) -> tuple[str, str]:
    title = _SCOPES.get(scope, scope)
    report = result.report
    if report is None:
        text = f"{title}: {result.reason}."
        return f"<h4>{html.escape(title)}</h4><p>{html.escape(result.reason)}.</p>", text
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
    table_html, table_md = table(
        ["column", "test", "statistic", "adjusted p", "effect", "PSI", "drifted"], rows
    )
    chart = drift_effects_png(
        frame.select("column", "effect", "drifted"),
        min_effect=report.min_effect,
        title=f"{title}: {result.n_current} rows vs {result.n_reference} training rows",
    )
    part_html = (
        f"<h4>{html.escape(title)}</h4><p>{html.escape(result.reason)}</p>"
        f"{image_tag(chart, f'drift effect per column: {title}')}{table_html}"
    )
    return part_html, f"{title}: {result.reason}\n\n{table_md}"


@dataclass
class _Parts:
    """What the section accumulates: HTML and Markdown parts, client sentences, steps."""

    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    client: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def add(self, part_html: str, part_md: str) -> None:
        self.html.append(part_html)
        self.md.append(part_md)


def _drift(parts: _Parts, drift: dict[str, BatchDrift]) -> None:
    for scope in ("new_data", "served"):
        if scope not in drift:
            continue
        parts.add(*_drift_part(scope, drift[scope]))
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
        parts.add(
            "<h4>Served traffic</h4><p>No served predictions ingested yet.</p>",
            "Served traffic: none ingested yet.",
        )
        return
    rows = [
        [r["model_name"], r["model"], r["role"], r["predictions"], f"{r['p50_ms']:.2f}",
         f"{r['p99_ms']:.2f}", r["last_seen"]]
        for r in traffic.iter_rows(named=True)
    ]  # fmt: skip
    t_html, t_md = table(
        ["model", "hash", "role", "predictions", "p50 ms", "p99 ms", "last seen"], rows
    )
    parts.add(f"<h4>Served traffic</h4>{t_html}", f"Served traffic\n\n{t_md}")


def _quality(parts: _Parts, quality: pl.DataFrame) -> None:
    if not quality.height:
        return
    rows = [
        [r["period"], r["model_name"], r["labelled"], f"{r['accuracy']:.3f}"]
        for r in quality.iter_rows(named=True)
    ]
    q_html, q_md = table(["period", "model", "labelled", "accuracy"], rows)
    chart = image_tag(served_accuracy_png(quality), "accuracy on served data over time")
    parts.add(
        f"<h4>Accuracy on served data (feedback labels)</h4>{chart}{q_html}",
        f"Accuracy on served data\n\n{q_md}",
    )
    latest = quality.sort("period").row(-1, named=True)
    parts.client.append(
        f"On real requests that users labelled, the model was right"
        f" {latest['accuracy']:.0%} of the time ({latest['labelled']} labels,"
        f" {latest['period']:%Y-%m-%d})."
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
    s_html, s_md = table(
        ["shadow", "champion", "rows", "agreement", "shadow acc.", "champion acc."], rows
    )
    parts.add(
        f"<h4>Shadow predictions vs the champion</h4>{s_html}",
        f"Shadow predictions vs the champion\n\n{s_md}",
    )


def _freshness(parts: _Parts, age: Staleness) -> None:
    parts.add(f"<h4>Freshness</h4><p>{html.escape(age.reason)}</p>", f"Freshness: {age.reason}")
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
) -> MonitoringSection:
    parts = _Parts()
    _drift(parts, drift)
    _traffic(parts, traffic)
    _quality(parts, quality)
    _shadow(parts, shadow)
    _freshness(parts, age)
    return MonitoringSection(
        html='<section id="monitoring"><h3>Monitoring</h3>' + "".join(parts.html) + "</section>",
        markdown="**Monitoring**\n\n" + "\n\n".join(parts.md),
        client_lines=parts.client,
        next_steps=parts.steps,
    )
