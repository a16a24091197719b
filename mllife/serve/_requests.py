"""Reading a request: its body within the size limit, then JSON rows (checked against
the feature contract) or images (base64 or a raw upload), within the batch limit. What
cannot be read is an :class:`HTTPProblem` with the status and a message that says why."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import anyio
import orjson
from starlette.requests import ClientDisconnect, Request

from mllife.config.ops import ServingConfig
from mllife.serve._images import ImageUploads, image_size
from mllife.serve._inputs import RowContract

__all__ = ["HTTPProblem", "RequestReader"]


#: image requests up to this size have their headers checked on the event loop
INLINE_IMAGE_BYTES = 256 * 1024


class HTTPProblem(Exception):
    """A refused request: its HTTP status, a message for the caller and, for bad
    inputs, one line per offending value."""

    def __init__(self, status: int, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


async def _declared_body(request: Request) -> bytes:
    """The whole body, read from the ASGI messages (``request.body()`` without its
    stream generator: a few microseconds of every single-row request)."""
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class RequestReader:
    """Bodies and inputs for one server: tables when it has a row ``contract``, images
    otherwise."""

    def __init__(
        self, settings: ServingConfig, *, contract: RowContract | None, max_text_chars: int = 0
    ) -> None:
        self.settings = settings
        self.contract = contract
        #: the longest served text ([data] max_text_chars, as in training)
        self.max_text_chars = max_text_chars

    async def body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if (
                not declared.isdigit()
                or not declared.isascii()
                or (len(declared) > 1 and declared.startswith("0"))
            ):
                raise HTTPProblem(400, f"Content-Length {declared[:20]!r} is not a plain number")
            if int(declared) > limit:
                raise HTTPProblem(413, f"body of {declared} bytes is over the {limit}-byte limit")
        try:
            if declared is not None:
                return await _declared_body(request)
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPProblem(413, f"body is over the {limit}-byte limit")
                chunks.append(chunk)
            return b"".join(chunks)
        except ClientDisconnect:
            # The client left (or missed serving.body_timeout_seconds) mid-body: nobody
            # to answer, nothing to log as an error. 499 is nginx's "client closed".
            raise HTTPProblem(499, "the client closed the connection before its body") from None

    async def inputs(self, request: Request, *, limiter) -> tuple[Any, list[str] | None, Any]:
        """:meth:`parse` of the request's body. Table rows and a small upload's image
        headers are checked inline (microseconds; a thread hop costs more: up to the 5 ms
        GIL switch interval); a large upload's in a worker thread (``limiter``), so it never
        holds the event loop (/health and other clients keep answering)."""
        body = await self.body(request)
        content_type = request.headers.get("content-type", "")
        if self.contract is not None or len(body) <= INLINE_IMAGE_BYTES:
            return self.parse(content_type, body)
        return await anyio.to_thread.run_sync(self.parse, content_type, body, limiter=limiter)

    def bounded(self, items: list) -> list:
        if len(items) > self.settings.max_batch:
            raise HTTPProblem(
                413,
                f"{len(items)} inputs in one request; the limit is {self.settings.max_batch}"
                " (serving.max_batch): split the batch",
            )
        return items

    def parse(self, content_type: str, body: bytes) -> tuple[Any, list[str] | None, Any]:
        """Model inputs, their hashes (None: computed at ingestion), and the features to
        log: for tables the checked :class:`ColumnBatch` (all three uses share it), for
        images a statistics dict per input. ``content_type``: the request's header."""
        content_type = content_type.split(";")[0].strip().lower()
        if self.contract is None and (
            content_type.startswith("image/") or content_type == "application/octet-stream"
        ):
            return self._images([body])
        if content_type not in ("application/json", ""):
            accepted = "application/json" + ("" if self.contract is not None else ", image/*")
            raise HTTPProblem(
                415, f"Content-Type {content_type!r} is not accepted; send {accepted}"
            )
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise HTTPProblem(400, f"malformed JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise HTTPProblem(422, "the body must be a JSON object")
        if self.contract is not None:
            rows = payload.get("rows", [payload["row"]] if "row" in payload else None)
            if rows is None:
                rows = self._columns_as_rows(payload)
            if rows is None:
                raise HTTPProblem(
                    422, 'send {"rows": [{column: value, ...}, ...]} or {"row": {...}}'
                )
            if isinstance(rows, list):
                self.bounded(rows)
                self._text_lengths(rows)
            batch = self.contract.check(rows)
            return batch, None, batch  # hashed at ingestion, from the canonical JSON
        images = payload.get("images", [payload["image"]] if "image" in payload else None)
        if not isinstance(images, list) or not images:
            raise HTTPProblem(
                422, 'send {"images": ["<base64>", ...]}, {"image": "<base64>"} or an image/* body'
            )
        self.bounded(images)
        decoded = []
        for position, text in enumerate(images):
            if not isinstance(text, str):
                raise HTTPProblem(422, f"image {position}: expected base64 text")
            try:
                decoded.append(base64.b64decode(text, validate=True))
            except (binascii.Error, ValueError) as exc:
                raise HTTPProblem(422, f"image {position}: not valid base64 ({exc})") from None
        return self._images(decoded)

    def _columns_as_rows(self, payload: dict) -> list | None:
        """A text project's shorthand: ``{"review": "..."}`` is one row, and
        ``{"review": ["...", "..."]}`` a batch (the one text column, listed)."""
        names = set(self.contract.columns)
        if not payload or payload.keys() != names:
            return None
        texts = self.contract.texts
        if len(names) == 1 and texts and isinstance(payload[texts[0]], list):
            return [{texts[0]: value} for value in payload[texts[0]]]
        return [payload]

    def _text_lengths(self, rows: list) -> None:
        limit = self.max_text_chars
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                return  # the contract names it
            for name in self.contract.texts:
                value = row.get(name)
                if isinstance(value, str) and len(value) > limit:
                    raise HTTPProblem(
                        413,
                        f"row {index}, column {name!r}: a text of {len(value):,} characters;"
                        f" the limit is {limit:,} ([data] max_text_chars): send a shorter"
                        " text",
                    )

    def _images(self, payloads: list[bytes]) -> tuple[ImageUploads, list[str], None]:
        # One budget for the whole request, from the headers, before any decode: 64
        # bombs that each pass the per-image limit must not pass together.
        budget, total, sizes = self.settings.max_request_pixels, 0, []
        for position, payload in enumerate(payloads):
            width, height = image_size(
                payload, position=position, max_pixels=self.settings.max_image_pixels
            )
            sizes.append((width, height))
            total += width * height
            if total > budget:
                raise HTTPProblem(
                    413,
                    f"the images up to image {position} declare {total:,} pixels; a request"
                    f" may decode at most {budget:,} (serving.max_request_pixels): send"
                    " fewer or smaller images per request",
                )
        # Decoding happens with the model, in a worker thread, through the model's own
        # preprocessing (the pixels it was trained on: colour, orientation, resize).
        hashes = [hashlib.sha256(payload).hexdigest() for payload in payloads]
        return ImageUploads(payloads, sizes), hashes, None
