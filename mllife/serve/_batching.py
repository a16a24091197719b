"""Micro-batching: concurrent image requests (and text rows for a sentence-encoder model)
for the same model share one forward pass.

A request that arrives when no batch is open opens one and waits up to ``window`` for
others; the batch runs when the window ends or ``max_batch`` images have joined. One
pass over 32 images costs far less than 32 passes over one (the per-call overhead of
the framework and the small matrix products dominate a single image), so at many
concurrent clients the server answers several times more requests per second.

Each request still gets exactly its own answer: if the batch fails on an input (a
corrupt image), its members are run one by one, so an error reaches only the request
that caused it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from mllife.preprocess.column_batch import ColumnBatch
from mllife.serve._images import ImageUploads
from mllife.serve._requests import HTTPProblem

__all__ = ["MicroBatcher"]


class _Batch:
    def __init__(self, served) -> None:
        self.served = served
        self.members: list[tuple[ImageUploads, asyncio.Future]] = []
        self.size = 0

    def add(self, uploads: ImageUploads) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.members.append((uploads, future))
        self.size += len(uploads)
        return future


def _merged(members: list[tuple[Any, Any]]):
    if isinstance(members[0][0], ColumnBatch):
        return ColumnBatch.concat([rows for rows, _ in members])
    payloads, sizes = [], []
    for uploads, _ in members:
        payloads += uploads.payloads
        sizes += uploads.sizes
    return ImageUploads(payloads, sizes)


class MicroBatcher:
    """Collects image requests per served model; ``run(served, uploads)`` does the
    inference (the server's bounded gate) and returns (indices, probabilities, features)."""

    def __init__(
        self,
        run: Callable[[Any, ImageUploads], Awaitable[tuple]],
        *,
        window_seconds: float,
        max_batch: int,
    ) -> None:
        self._run = run
        self.window, self.max_batch = window_seconds, max_batch
        self._open: dict[str, _Batch] = {}
        self._tasks: set[asyncio.Task] = set()
        self.batches = 0  # forward passes run for batched requests
        self.requests = 0  # requests answered through a batch

    async def predict(self, served, uploads: ImageUploads) -> tuple:
        if len(uploads) >= self.max_batch:
            return await self._run(served, uploads)  # already a batch of its own
        key = served.ref.model_hash
        batch = self._open.get(key)
        if batch is not None and batch.size + len(uploads) > self.max_batch:
            self._start(key, batch)
            batch = None
        if batch is None:
            batch = self._open[key] = _Batch(served)
            self._schedule(asyncio.create_task(self._after_window(key, batch)))
        future = batch.add(uploads)
        if batch.size >= self.max_batch:
            self._start(key, batch)
        return await future

    def _schedule(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_window(self, key: str, batch: _Batch) -> None:
        await asyncio.sleep(self.window)
        if self._open.get(key) is batch:
            self._start(key, batch)

    def _start(self, key: str, batch: _Batch) -> None:
        if self._open.get(key) is batch:
            del self._open[key]
        self._schedule(asyncio.create_task(self._execute(batch)))

    async def _execute(self, batch: _Batch) -> None:
        members = batch.members
        self.batches += 1
        self.requests += len(members)
        try:
            best, confidence, features = await self._run(batch.served, _merged(members))
        except HTTPProblem as exc:  # busy or too slow: the same answer for every member
            for _, future in members:
                _fail(future, exc)
            return
        except Exception as exc:
            if len(members) == 1:
                _fail(members[0][1], exc)
            else:  # find whose input failed: each request gets its own answer or error
                await asyncio.gather(*(self._alone(batch.served, m) for m in members))
            return
        start = 0
        for uploads, future in members:
            stop = start + len(uploads)
            share = (
                features.part(start, stop)
                if isinstance(features, ColumnBatch)
                else features[start:stop]
            )
            _settle(future, (best[start:stop], confidence[start:stop], share))
            start = stop

    async def _alone(self, served, member) -> None:
        uploads, future = member
        try:
            result = await self._run(served, uploads)
        except Exception as exc:
            _fail(future, exc)
            return
        _settle(future, result)


def _settle(future: asyncio.Future, result) -> None:
    if not future.done():  # done: its client went away
        best, confidence, features = result
        if not isinstance(features, ColumnBatch):
            features = list(features)
        future.set_result((np.asarray(best), np.asarray(confidence), features))


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
