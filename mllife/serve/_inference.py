"""Model inference off the event loop, bounded: a full queue answers 503 with
Retry-After, a request past its time limit answers 504, and the server keeps answering
others (/health included) while large batches run.

Worker threads run the models (numpy, torch and PIL release the GIL for the heavy
parts). A timed-out request stops waiting at once; its thread finishes in the
background and still counts against the queue until it does, so back-pressure stays
true to the work in flight.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import numpy as np

from mllife._cpus import usable_cpus
from mllife._faults import slow_point
from mllife.serve._requests import HTTPProblem

__all__ = [
    "InferenceGate",
    "QueueFull",
    "TimedOut",
    "image_batcher",
    "inference_threads",
    "predict_rows",
    "responsive_loop",
    "text_batcher",
]


def inference_threads() -> int:
    """Worker threads for decoding and inference: the CPUs this process may run on (a
    container's or ``taskset``'s share, not the machine's), at most 4. More threads than
    CPUs only make forward passes take turns."""
    return min(4, usable_cpus())


@contextlib.contextmanager
def responsive_loop(images: bool) -> Iterator[None]:
    """While serving images, a 1 ms GIL switch interval: the event loop shares the GIL
    with the inference threads, and a thread that holds it keeps the loop waiting up to
    the interval (5 ms by default), which /health and every small request pay. Table rows
    are predicted inline, so there it would only add switches."""
    switch = sys.getswitchinterval()
    if images:
        sys.setswitchinterval(min(switch, 0.001))
    try:
        yield
    finally:
        sys.setswitchinterval(switch)


def image_batcher(gate: InferenceGate, batching):
    """The micro-batcher of image requests (``[serving.batching]``), or None when off."""
    from mllife.serve._batching import MicroBatcher
    from mllife.serve._images import predict_images

    if not batching.enabled:
        return None
    return MicroBatcher(
        lambda served, uploads: gate.run(predict_images, served, uploads),
        window_seconds=batching.window_ms / 1000.0,
        max_batch=batching.max_images,
    )


def text_batcher(gate: InferenceGate, batching):
    """The micro-batcher of text rows for sentence-encoder models (a forward pass over
    16 sentences costs little more than over one), or None when off."""
    from mllife.serve._batching import MicroBatcher

    if not batching.enabled:
        return None

    def rows_with_features(served, rows):
        best, confidence = predict_rows(served, rows)
        return best, confidence, rows

    return MicroBatcher(
        lambda served, rows: gate.run(rows_with_features, served, rows),
        window_seconds=batching.window_ms / 1000.0,
        max_batch=batching.max_images,
    )


class QueueFull(HTTPProblem):
    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            503,
            f"the server is busy: {limit} inference jobs are already queued or running"
            f" (serving.max_queue); retry in {retry_after} s",
        )
        self.retry_after = retry_after


class TimedOut(HTTPProblem):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            504,
            f"inference took longer than the time limit of {seconds:g} s"
            " (serving.request_timeout_seconds); send fewer or smaller inputs per request",
        )


class InferenceGate:
    """Admission (at most ``max_queue`` jobs in flight), worker threads (at most
    ``threads`` at once) and a time limit per request."""

    def __init__(self, *, max_queue: int, threads: int, timeout: float) -> None:
        self.max_queue, self.timeout = max_queue, timeout
        self.limiter = anyio.CapacityLimiter(threads)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.rejected = 0
        self.timed_out = 0

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            if self.in_flight >= self.max_queue:
                self.rejected += 1
                raise QueueFull(self.max_queue, retry_after=max(1, round(self.timeout / 10)))
            self.in_flight += 1

        state = {"started": False, "abandoned": False}

        def job() -> Any:
            with self._lock:
                if state["abandoned"]:  # its request gave up before a thread was free
                    return None
                state["started"] = True
            try:
                return function(*args)
            finally:
                with self._lock:
                    self.in_flight -= 1

        try:
            with anyio.fail_after(self.timeout):
                return await anyio.to_thread.run_sync(
                    job, limiter=self.limiter, abandon_on_cancel=True
                )
        except TimeoutError:
            with self._lock:
                self.timed_out += 1
                if not state["started"]:
                    state["abandoned"] = True
                    self.in_flight -= 1
            raise TimedOut(self.timeout) from None


_checked_inputs = threading.local()


def _trust_checked_inputs() -> None:
    """Served rows reach the model checked: the contract refused NaN, infinities and
    values out of bounds, and the preprocessing refuses a feature past float32. So
    scikit-learn's own scan of every input for finiteness (a quarter of a single row's
    model call) is switched off, in each serving thread once (its config is per thread);
    the output is checked instead (:func:`predict_rows`)."""
    if not getattr(_checked_inputs, "trusted", False):
        sklearn = sys.modules.get("sklearn")  # not loaded: no scikit-learn model is served
        if sklearn is not None:
            sklearn.set_config(assume_finite=True)
            _checked_inputs.trusted = True


def predict_rows(served, inputs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Each input's predicted class index (into ``served.model.classes``) and its
    probability. Small batches run inline: a thread waiting for the GIL behind the event
    loop stalls for the 5 ms switch interval (measured: 6x slower single rows)."""
    slow_point("serve:inference")
    _trust_checked_inputs()
    proba = served.model.predict_proba(inputs)
    if not np.isfinite(proba).all():
        raise ValueError(
            f"model {served.ref.name!r} returned probabilities that are not finite numbers"
        )
    best = proba.argmax(axis=1)
    return best, proba[np.arange(len(best)), best]
