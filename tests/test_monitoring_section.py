"""The report's monitoring section: drift charts and tables, served traffic, accuracy on
served data over time, shadow agreement and freshness, in HTML, Markdown and words."""

import base64
import io
import re
from datetime import datetime

import numpy as np
import polars as pl
from PIL import Image

from mllife.monitoring.batch import BatchDrift, Staleness
from mllife.monitoring.drift import drift
from mllife.reporting.monitoring_section import monitoring_section
from mllife.reporting.render import section_html, section_markdown


def _frame(shift: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "radius": rng.normal(shift, 1.0, 3000),
            "texture": rng.normal(0.0, 1.0, 3000),
            "kind": rng.choice(["a", "b"], 3000),
        }
    )


def test_section_shows_drift_traffic_quality_and_freshness():
    report = drift(_frame(0.0, 1), _frame(1.0, 2))
    assert report.drifted_columns == ["radius"]
    served = BatchDrift(report, 3000, 3000, report.summary(), "served")
    new_data = BatchDrift(None, 3000, 0, "no new data since the champion was deployed")
    quality = pl.DataFrame(
        {
            "period": [datetime(2026, 11, 20), datetime(2026, 11, 21)],
            "model_name": ["logreg", "logreg"],
            "model": ["abc", "abc"],
            "labelled": [40, 50],
            "accuracy": [0.95, 0.82],
        }
    )
    traffic = pl.DataFrame(
        {
            "model_name": ["logreg"],
            "model": ["abc"],
            "role": ["champion"],
            "predictions": [900],
            "p50_ms": [0.8],
            "p99_ms": [4.1],
            "first_seen": [datetime(2026, 11, 20)],
            "last_seen": [datetime(2026, 11, 21)],
        }
    )
    old = Staleness(45.0, 100.0, False, "the champion was deployed 45.0 days ago (limit 30)")
    section = monitoring_section(
        {"new_data": new_data, "served": served},
        traffic=traffic,
        quality=quality,
        shadow=pl.DataFrame(),
        age=old,
    )
    html, markdown = section_html(section), section_markdown(section)
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    assert [alt for alt, _ in images] == [
        "drift effect per column: Served inputs",
        "accuracy on served data over time",
    ]
    for _, data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            assert image.format == "PNG" and image.width > 300
    assert "No new data since the champion was deployed." in html
    assert "<td>radius</td>" in html and "DRIFT" in html
    assert "<td>900</td>" in html and "0.820" in html
    assert "| radius |" in markdown
    lines = " ".join(section.client_lines)
    assert "requests the model answers no longer look like" in lines and "radius" in lines
    assert "right 82% of the time (50 labels, 2026-11-21)" in lines
    assert "getting old" in lines
    assert any("retrain" in step for step in section.next_steps)


def test_a_quiet_section_says_so_without_alarms():
    report = drift(_frame(0.0, 1), _frame(0.0, 2))
    fresh = Staleness(1.0, 2.0, True, "champion deployed 1.0 days ago, training data 2.0 days old")
    section = monitoring_section(
        {"new_data": BatchDrift(report, 3000, 3000, report.summary())},
        traffic=pl.DataFrame(),
        quality=pl.DataFrame(),
        shadow=pl.DataFrame(),
        age=fresh,
    )
    assert section.client_lines == [] and section.next_steps == []
    html = section_html(section)
    assert "No served predictions ingested yet" in html
    assert "no dataset drift" in html.lower()
