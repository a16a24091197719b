"""Single-prediction latency, measured with a real timer on raw inputs."""

from __future__ import annotations

import time

import numpy as np
import polars as pl

__all__ = ["p95_latency_ms"]

MIN_PREDICTIONS = 200


def p95_latency_ms(model, inputs, *, n: int = MIN_PREDICTIONS, warmup: int = 10) -> float:
    """The 95th percentile of ``n`` one-row predictions (decode, preprocess, predict).

    Rows are cycled from ``inputs`` (image bytes or a table frame); a few warm-up calls
    are not counted.
    """
    n = max(n, MIN_PREDICTIONS)
    count = len(inputs) if not isinstance(inputs, pl.DataFrame) else inputs.height
    if count == 0:
        raise ValueError("no inputs to time predictions on")

    def one(i: int):
        item = (
            inputs[i % count : i % count + 1]
            if isinstance(inputs, pl.DataFrame)
            else [inputs[i % count]]
        )
        return model.predict(item)

    for i in range(warmup):
        one(i)
    times = np.empty(n)
    for i in range(n):
        started = time.perf_counter_ns()
        one(i)
        times[i] = (time.perf_counter_ns() - started) / 1e6
    return float(np.percentile(times, 95))
