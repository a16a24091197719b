"""Report charts kept per input (``chart_cache``): the same inputs are drawn once, other
inputs are drawn anew, and outside a report nothing is kept."""

import polars as pl

from mllife.reporting.chart_cache import charts_kept_in, memoized
from mllife.reporting.plots import metric_history_png

PNG = b"\x89PNG\r\n\x1a\n"
drawn = []


@memoized
def chart(frame: pl.DataFrame, *, title: str) -> bytes:
    drawn.append(title)
    return PNG + title.encode() + frame.write_csv().encode()


def test_a_chart_is_drawn_once_per_input(tmp_path):
    frame = pl.DataFrame({"x": [1, 2]})
    drawn.clear()
    with charts_kept_in(tmp_path):
        first = chart(frame, title="t")
        assert chart(frame.clone(), title="t") == first
        assert chart(frame, title="other") != first
        assert chart(pl.DataFrame({"x": [1, 3]}), title="t") != first
    assert drawn == ["t", "other", "t"]
    chart(frame, title="t")  # outside: drawn, nothing kept
    assert drawn[-1] == "t" and len(list(tmp_path.glob("*.png"))) == 3


def test_a_real_chart_read_back_is_the_same_png(tmp_path):
    history = pl.DataFrame(
        {"name": ["a", "b"], "model_hash": ["h1", "h2"], "value": [0.5, 0.7],
         "created_at": [1.0, 2.0]}
    )  # fmt: skip
    with charts_kept_in(tmp_path):
        png = metric_history_png(history, metric="accuracy", split="validation")
        again = metric_history_png(history, metric="accuracy", split="validation")
    assert png.startswith(PNG) and again == png
