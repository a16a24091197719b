"""``/metrics`` in the Prometheus text format, and one structured (JSON) access-log line
per request, from one small ASGI middleware."""

from __future__ import annotations

import bisect
import os
import sys
import time
from collections import Counter

import orjson

__all__ = ["MetricsMiddleware", "RequestMetrics", "metrics_text", "truncated_texts"]

#: latency histogram bucket bounds, in seconds (Prometheus convention: cumulative "le")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ROUTES = ("/predict", "/feedback", "/model", "/health", "/metrics")


class RequestMetrics:
    """Requests by route and status, their latency, and (when ``access_log``) one JSON
    line per request on stdout; fed by :class:`MetricsMiddleware`."""

    def __init__(self, *, access_log: bool) -> None:
        self.access_log = access_log
        self.requests: Counter = Counter()  # (route, status) -> count
        self.buckets: dict[str, list[int]] = {r: [0] * (len(BUCKETS) + 1) for r in ROUTES}
        self.seconds: Counter = Counter()

    def record(self, scope, code: int, seconds: float) -> None:
        path = scope.get("path", "")
        route = path if path in self.buckets else "other"
        self.requests[(route, code)] += 1
        if route != "other":
            self.buckets[route][bisect.bisect_left(BUCKETS, seconds)] += 1
            self.seconds[route] += seconds
        if self.access_log:
            client = scope.get("client") or ("", 0)
            line = {
                "time": round(time.time(), 3),
                "method": scope.get("method"),
                "path": path[:200],
                "status": code,
                "ms": round(seconds * 1000, 3),
                "client": client[0],
            }
            sys.stdout.buffer.write(orjson.dumps(line) + b"\n")


class MetricsMiddleware:
    """Pure ASGI middleware timing every HTTP request into a :class:`RequestMetrics`."""

    def __init__(self, app, metrics: RequestMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def sending(message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.record(scope, code, time.perf_counter() - started)


def truncated_texts(lineup) -> dict[str, int]:
    """Served texts each sentence-encoder model cut at its token limit, by model name."""
    served = [s for s in (lineup.champion, lineup.challenger) if s is not None]
    return {s.ref.name: s.model.encoder.truncated for s in served if hasattr(s.model, "encoder")
            and hasattr(s.model.encoder, "truncated")}  # fmt: skip


def metrics_text(metrics: RequestMetrics, *, queue: int, rejected: int, timed_out: int,
                 log_buffered: int | None, batcher=None,
                 truncated: dict[str, int] | None = None) -> str:  # fmt: skip
    """The Prometheus exposition of the counters."""
    out = [
        "# HELP mllife_requests_total HTTP requests by route and status.",
        "# TYPE mllife_requests_total counter",
    ]
    for (route, code), n in sorted(metrics.requests.items()):
        out.append(f'mllife_requests_total{{route="{route}",status="{code}"}} {n}')
    out += [
        "# HELP mllife_request_seconds Request latency.",
        "# TYPE mllife_request_seconds histogram",
    ]
    for route, counts in metrics.buckets.items():
        running = 0
        for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'mllife_request_seconds_bucket{{route="{route}",le="{le}"}} {running}')
        out.append(f'mllife_request_seconds_sum{{route="{route}"}} {metrics.seconds[route]:.6f}')
        out.append(f'mllife_request_seconds_count{{route="{route}"}} {running}')
    errors = sum(n for (_, code), n in metrics.requests.items() if code >= 500)
    out += [
        "# HELP mllife_errors_total Responses with a 5xx status.",
        "# TYPE mllife_errors_total counter",
        f"mllife_errors_total {errors}",
        "# HELP mllife_inference_queue Inference jobs queued or running.",
        "# TYPE mllife_inference_queue gauge",
        f"mllife_inference_queue {queue}",
        "# HELP mllife_inference_rejected_total Requests refused with 503 (queue full).",
        "# TYPE mllife_inference_rejected_total counter",
        f"mllife_inference_rejected_total {rejected}",
        "# HELP mllife_inference_timeouts_total Requests answered 504 (time limit).",
        "# TYPE mllife_inference_timeouts_total counter",
        f"mllife_inference_timeouts_total {timed_out}",
    ]
    out += [
        "# HELP mllife_process_info The server process that answered (one per worker).",
        "# TYPE mllife_process_info gauge",
        f'mllife_process_info{{pid="{os.getpid()}"}} 1',
    ]
    if batcher is not None:
        out += [
            "# HELP mllife_microbatches_total Forward passes shared by batched image requests.",
            "# TYPE mllife_microbatches_total counter",
            f"mllife_microbatches_total {batcher.batches}",
            "# HELP mllife_microbatched_requests_total Image requests answered in a batch.",
            "# TYPE mllife_microbatched_requests_total counter",
            f"mllife_microbatched_requests_total {batcher.requests}",
        ]
    if truncated:
        out += [
            "# HELP mllife_text_truncated_total Texts cut at the sentence encoder's token limit"
            " (the model read only their beginning).",
            "# TYPE mllife_text_truncated_total counter",
            *(f'mllife_text_truncated_total{{model="{m}"}} {n}' for m, n in truncated.items()),
        ]
    if log_buffered is not None:
        out += [
            "# HELP mllife_log_buffered_rows Served predictions not yet written to a segment.",
            "# TYPE mllife_log_buffered_rows gauge",
            f"mllife_log_buffered_rows {log_buffered}",
        ]
    return "\n".join(out) + "\n"
