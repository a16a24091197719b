"""The model server: a Starlette app answering with the champion.

Routes: ``POST /predict``, ``POST /feedback``, ``POST /rating``, ``GET /model`` (each
needs an API key allowed that route; a rating needs ``predict``), ``GET /health`` and
``GET /metrics`` (open), and the review desk under ``/review`` (a key with the
``review`` scope). Every answered prediction is logged; a request refused for any
reason (401, 403, 4xx) logs nothing as a prediction.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import time
from datetime import UTC, datetime

import anyio
import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from mllife._errors import DataError, MllifeError
from mllife._faults import fail_point
from mllife.config.project import ProjectConfig
from mllife.data.pii import pii_mask
from mllife.monitoring.kept_inputs import InputKeeper
from mllife.preprocess.column_batch import ColumnBatch
from mllife.serve._failures import report_model_failure, server_fault
from mllife.serve._health import health_body, model_body
from mllife.serve._ids import AnsweredRequests, RequestIds
from mllife.serve._images import ImageUploads, predict_images
from mllife.serve._inference import (
    InferenceGate,
    image_batcher,
    inference_threads,
    predict_rows,
    responsive_loop,
    text_batcher,
)
from mllife.serve._inputs import RowContract, feature_contract
from mllife.serve._labels import LabelRoutes
from mllife.serve._lineup import Lineup, ServedModel, load_lineup, store_fingerprint
from mllife.serve._log import open_logs, prediction_ids
from mllife.serve._metrics import (
    MetricsMiddleware,
    RequestMetrics,
    metrics_text,
    truncated_texts,
)
from mllife.serve._requests import HTTPProblem, RequestReader
from mllife.serve._responses import bad_input, json_response, problem
from mllife.serve._review import review_app
from mllife.serve.keys import ApiKey, find_key
from mllife.storage.store import Store

__all__ = ["ModelServer", "create_app"]

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ModelServer(LabelRoutes):
    """The state behind the app: config, the current lineup, and the two logs."""

    def __init__(self, config: ProjectConfig, *, store: Store | None = None) -> None:
        self.config = config
        self.settings = config.serving
        self.store = store or Store(config.store_path)
        is_table = config.data.kind == "table"
        contract = RowContract(feature_contract(config)) if is_table else None
        self.reader = RequestReader(
            self.settings, contract=contract, max_text_chars=config.data.max_text_chars
        )
        self.fingerprint = store_fingerprint(self.store)
        self.lineup: Lineup = load_lineup(config, self.store)
        self.reload_error: str | None = None
        self.request_ids = RequestIds(config.state_dir / "serving.key")
        self.answered = AnsweredRequests()
        self.decode_limiter = anyio.CapacityLimiter(inference_threads())
        self.gate = InferenceGate(
            max_queue=self.settings.max_queue,
            threads=inference_threads(),
            timeout=self.settings.request_timeout_seconds,
        )
        self.batcher = None if is_table else image_batcher(self.gate, self.settings.batching)
        texts = contract is not None and contract.texts
        self.text_batcher = text_batcher(self.gate, self.settings.batching) if texts else None
        self.request_metrics = RequestMetrics(access_log=self.settings.access_log)
        self.shadow_errors, self.last_shadow_error = 0, None  # the last one's text
        logs = open_logs(self.settings.log, config.predictions_dir, mask=pii_mask(config))
        self.predictions, self.feedback, self.failures, self.ratings, self.reviews = logs
        self.logs = [log for log in logs if log is not None]
        #: served images kept for the review desk ([review]); None: not kept
        self.keeper = (
            InputKeeper(config.served_inputs_dir, config.review)
            if config.review.keep_inputs and not is_table and self.predictions is not None
            else None
        )
        self.failures_seen: set[tuple[str, str]] = set()  # (model, error) reported once
        self.failing_models = "MLLIFE_FAIL_AT" in os.environ  # tests; read once, not per call

    # -- lifecycle ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        for log in self.logs:
            log.start()
        if self.keeper is not None:
            self.keeper.start()
        watcher = asyncio.get_running_loop().create_task(self._watch())
        # Everything loaded so far (libraries, the models) lives as long as the server:
        # keep it out of the cyclic GC, whose full passes would otherwise walk it again
        # and again under load.
        gc.freeze()
        try:
            with responsive_loop(images=self.reader.contract is None):
                yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            for log in self.logs:
                await anyio.to_thread.run_sync(log.close)
            if self.keeper is not None:
                await anyio.to_thread.run_sync(self.keeper.close)

    async def _watch(self) -> None:
        """Pick up a new champion, challenger or key soon after the store changes."""
        while True:
            await anyio.sleep(self.settings.watch_seconds)
            seen = store_fingerprint(self.store)
            if seen == self.fingerprint:
                continue
            try:
                lineup = await anyio.to_thread.run_sync(
                    load_lineup, self.config, self.store, self.lineup
                )
            except MllifeError as exc:
                # Keep answering with the models already loaded; retried every tick,
                # shown on /health until it loads.
                if str(exc) != self.reload_error:
                    print(f"mllife serve: cannot load the new lineup: {exc}", file=sys.stderr)
                self.reload_error = str(exc)
                continue
            self.lineup, self.fingerprint, self.reload_error = lineup, seen, None

    # -- access ------------------------------------------------------------------------

    def authorize(self, request: Request, route: str) -> ApiKey:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        token = token or request.headers.get("x-api-key")
        key = find_key(self.lineup.keys_by_hash, token)
        if key is None:
            raise HTTPProblem(
                401,
                "missing API key" if not token else "unknown or revoked API key",
            )
        if not key.may_call(route):
            raise HTTPProblem(403, f"key {key.name!r} may not call /{route}")
        return key

    # -- routes ------------------------------------------------------------------------

    def _answering(
        self, lineup: Lineup, key: ApiKey, request_id: str | None = None
    ) -> tuple[ServedModel, str]:
        """The model (and its role) that answers this request, or the refusal."""
        chosen = lineup.answering(key, request_id)
        if chosen is None:
            raise HTTPProblem(503, "no champion is deployed yet: run `mllife run` first")
        served, role = chosen
        if not key.may_use(served.ref.name):
            raise HTTPProblem(403, f"key {key.name!r} may not use model {served.ref.name!r}")
        if self.predictions is not None and not self.predictions.accepting:
            raise HTTPProblem(
                503, f"the prediction log cannot be written ({self.predictions.last_error})"
            )
        return served, role

    async def _predict(self, served: ServedModel, inputs, features):
        """(class indices, probabilities, features to log)."""
        if self.failing_models:
            fail_point("serve:predict:" + served.ref.name)
        if isinstance(inputs, ImageUploads):
            # decoded by the model's preprocessing off the loop; concurrent ones batched
            if self.batcher is not None:
                return await self.batcher.predict(served, inputs)
            return await self.gate.run(predict_images, served, inputs)
        if self.text_batcher is not None and hasattr(served.model, "encoder"):
            # a sentence encoder's forward pass: off the event loop, concurrent requests
            # for the same model sharing one
            return await self.text_batcher.predict(served, inputs)
        if len(inputs) > self.settings.inline_rows:
            best, confidence = await self.gate.run(predict_rows, served, inputs)
        else:
            best, confidence = predict_rows(served, inputs)
        return best, confidence, features

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        received = _now()
        key = self.authorize(request, "predict")
        lineup = self.lineup
        self._answering(lineup, key)  # refused before the body is read
        inputs, hashes, features = await self.reader.inputs(request, limiter=self.decode_limiter)
        request_id = self.request_ids.new(key.name, len(inputs))
        served, role = self._answering(lineup, key, request_id)  # canary: per request
        try:
            best, confidence, features = await self._predict(served, inputs, features)
        except (DataError, HTTPProblem) as exc:
            if server_fault(exc):
                self._log_failure(request_id, received, key.name, served, role, started, exc)
            raise
        except Exception as exc:  # the model failed: logged per model, a 500 problem
            self._log_failure(request_id, received, key.name, served, role, started, exc)
            report_model_failure(self.failures_seen, served, exc)
            raise HTTPProblem(
                500, f"model {served.ref.name!r} failed to predict ({type(exc).__name__})"
            ) from exc
        classes = served.model.classes
        self.answered.add(request_id, served.ref.name, len(best))
        latency = (time.perf_counter() - started) * 1000.0
        if self.predictions is not None:
            if not isinstance(features, ColumnBatch):
                # Image statistics: canonical JSON (sorted keys) per input, in C, now, so
                # the writer thread only stores bytes. A table batch is encoded by the
                # writer, by column, in polars.
                features = [orjson.dumps(f, option=_CANONICAL) for f in features]
            self.predictions.append(
                (request_id, received, key.name, served.ref.model_hash, served.ref.name,
                 role, True, latency, features, hashes, best, confidence, classes),
                size=len(best),
            )  # fmt: skip
        if self.keeper is not None and isinstance(inputs, ImageUploads):
            self.keeper.keep(inputs.payloads, hashes)
        background = None
        if lineup.shadow is not None and self.predictions is not None:
            background = BackgroundTask(
                self._shadow, lineup.shadow, inputs, request_id, received, key.name, hashes,
                features,
            )  # fmt: skip
        ids = prediction_ids(request_id, len(inputs))
        labels = [classes[i] for i in best.tolist()]
        answers = [
            {"id": i, "label": label, "confidence": c}
            for i, label, c in zip(ids, labels, confidence.tolist(), strict=True)
        ]
        return json_response(
            {"model": served.ref.name, "model_hash": served.ref.model_hash, "role": role,
             "predictions": answers},
            background=background,
        )  # fmt: skip

    async def _shadow(self, shadow, inputs, request_id, received, key_name, hashes, features):
        started = time.perf_counter()
        try:
            if isinstance(inputs, ImageUploads):
                best, confidence, _ = await anyio.to_thread.run_sync(
                    predict_images, shadow, inputs, limiter=self.decode_limiter
                )
            else:
                best, confidence = predict_rows(shadow, inputs)
        except Exception as exc:  # the caller already has its answer; count and report
            self.shadow_errors += 1
            self.last_shadow_error = f"{type(exc).__name__}: {exc}"
            print(f"mllife serve: shadow model failed: {exc}", file=sys.stderr)
            self._log_failure(request_id, received, key_name, shadow, "shadow", started, exc)
            return
        latency = (time.perf_counter() - started) * 1000.0
        self.predictions.append(
            (request_id, received, key_name, shadow.ref.model_hash, shadow.ref.name,
             "shadow", False, latency, features, hashes, best, confidence,
             shadow.model.classes),
            size=len(best),
        )  # fmt: skip

    def _log_failure(self, *failure) -> None:
        if self.failures is not None:
            self.failures.record(*failure)

    async def model_route(self, request: Request) -> Response:
        key = self.authorize(request, "model")
        lineup = self.lineup
        if lineup.champion is None:
            raise HTTPProblem(503, "no champion is deployed yet: run `mllife run` first")
        if not key.may_use(lineup.champion.ref.name):
            raise HTTPProblem(
                403, f"key {key.name!r} may not use model {lineup.champion.ref.name!r}"
            )
        return json_response(model_body(lineup))

    async def health(self, request: Request) -> Response:
        """Open to anyone (load balancers have no key): whether the server can answer and
        log. What is deployed (hashes) and the errors' details (they name paths) are only
        for a key that may call /model."""
        lineup = self.lineup
        body = health_body(self, detailed=self._may_see_details(request))
        return json_response(body, status=200 if lineup.champion is not None else 503)

    async def metrics(self, request: Request) -> Response:
        """Prometheus text: requests, latency histogram, errors, queue, log buffer."""
        text = metrics_text(
            self.request_metrics,
            queue=self.gate.in_flight,
            rejected=self.gate.rejected,
            timed_out=self.gate.timed_out,
            batcher=self.batcher if self.batcher is not None else self.text_batcher,
            log_buffered=None if self.predictions is None else self.predictions.buffered,
            truncated=truncated_texts(self.lineup),
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    def _may_see_details(self, request: Request) -> bool:
        try:
            self.authorize(request, "model")
        except HTTPProblem:
            return False
        return True


def create_app(config: ProjectConfig, *, store: Store | None = None) -> Starlette:
    """The ASGI app serving ``config``'s champion (see :class:`ModelServer`)."""
    server = ModelServer(config, store=store)
    app = Starlette(
        routes=[
            Route("/predict", server.predict, methods=["POST"]),
            Route("/feedback", server.feedback_route, methods=["POST"]),
            Route("/rating", server.rating_route, methods=["POST"]),
            Route("/model", server.model_route, methods=["GET"]),
            Route("/health", server.health, methods=["GET"]),
            Route("/metrics", server.metrics, methods=["GET"]),
            Mount("/review", app=review_app(server)),
        ],
        middleware=[Middleware(MetricsMiddleware, metrics=server.request_metrics)],
        exception_handlers={HTTPProblem: problem, DataError: bad_input},
        lifespan=server.lifespan,
    )
    app.state.server = server
    return app
