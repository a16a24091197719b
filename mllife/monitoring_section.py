"""The monitoring part of the status report: drift of new data and of served inputs
(with a chart of each column's effect), served traffic, accuracy on served data from
feedback over time, shadow agreement, and the champion's age."""

from __future__ import annotations

import html

import polars as pl

from mllife._html import ReportSection, image_tag, table
from mllife.monitoring import BatchDrift, Staleness
from mllife.plots import drift_effects_png, served_accuracy_png

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


def monitoring_section(
    drift: dict[str, BatchDrift],
    *,
    traffic: pl.DataFrame,
    quality: pl.DataFrame,
    shadow: pl.DataFrame,
    age: Staleness,
) -> MonitoringSection:
    parts_html, parts_md, client, steps = [], [], [], []
    for scope in ("new_data", "served"):
        if scope in drift:
            part_html, part_md = _drift_part(scope, drift[scope])
            parts_html.append(part_html)
            parts_md.append(part_md)
            report = drift[scope].report
            if report is not None and report.drifted_columns:
                where = "new data" if scope == "new_data" else "the requests the model answers"
                changed = ", ".join(report.drifted_columns[:4])
                client.append(
                    f"The {where} no longer look like the data the model learned from"
                    f" ({changed} changed)."
                    if report.dataset_drift
                    else f"Part of {where} changed ({changed}): the model may be less"
                    " reliable on such inputs."
                )
                steps.append(
                    f"Label a sample of the drifted {where} and retrain on it"
                    " (`mllife run --job retrain`)."
                )
    if traffic.height:
        rows = [
            [
                r["model_name"],
                r["model"],
                r["role"],
                r["predictions"],
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                r["last_seen"],
            ]
            for r in traffic.iter_rows(named=True)
        ]
        t_html, t_md = table(
            ["model", "hash", "role", "predictions", "p50 ms", "p99 ms", "last seen"], rows
        )
        parts_html.append(f"<h4>Served traffic</h4>{t_html}")
        parts_md.append(f"Served traffic\n\n{t_md}")
    else:
        parts_html.append("<h4>Served traffic</h4><p>No served predictions ingested yet.</p>")
        parts_md.append("Served traffic: none ingested yet.")
    if quality.height:
        q_rows = [
            [r["period"], r["model_name"], r["labelled"], f"{r['accuracy']:.3f}"]
            for r in quality.iter_rows(named=True)
        ]
        q_html, q_md = table(["period", "model", "labelled", "accuracy"], q_rows)
        chart = image_tag(served_accuracy_png(quality), "accuracy on served data over time")
        parts_html.append(f"<h4>Accuracy on served data (feedback labels)</h4>{chart}{q_html}")
        parts_md.append(f"Accuracy on served data\n\n{q_md}")
        latest = quality.sort("period").row(-1, named=True)
        client.append(
            f"On real requests that users labelled, the model was right"
            f" {latest['accuracy']:.0%} of the time ({latest['labelled']} labels,"
            f" {latest['period']:%Y-%m-%d})."
        )
    if shadow.height:
        s_rows = [
            [
                r["shadow"],
                r["champion"],
                r["rows"],
                f"{r['agreement']:.3f}",
                "" if r["shadow_accuracy"] is None else f"{r['shadow_accuracy']:.3f}",
                "" if r["champion_accuracy"] is None else f"{r['champion_accuracy']:.3f}",
            ]
            for r in shadow.iter_rows(named=True)
        ]
        s_html, s_md = table(
            ["shadow", "champion", "rows", "agreement", "shadow acc.", "champion acc."], s_rows
        )
        parts_html.append(f"<h4>Shadow predictions vs the champion</h4>{s_html}")
        parts_md.append(f"Shadow predictions vs the champion\n\n{s_md}")
    parts_html.append(f"<h4>Freshness</h4><p>{html.escape(age.reason)}</p>")
    parts_md.append(f"Freshness: {age.reason}")
    if not age.passed:
        client.append(f"The deployed model is getting old: {age.reason}.")
        steps.append("Retrain on recent data: the freshness policy is exceeded.")
    return MonitoringSection(
        html='<section id="monitoring"><h3>Monitoring</h3>' + "".join(parts_html) + "</section>",
        markdown="**Monitoring**\n\n" + "\n\n".join(parts_md),
        client_lines=client,
        next_steps=steps,
    )
