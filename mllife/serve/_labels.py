"""What people send about served predictions: labels (``POST /feedback``) and ratings
(``POST /rating``), each checked against the key that sends it before anything is
logged. A mixin of :class:`~mllife.serve._app.ModelServer`."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mllife.serve._health import checked_feedback
from mllife.serve._ratings import checked_ratings
from mllife.serve._requests import HTTPProblem
from mllife.serve._responses import json_response

__all__ = ["LabelRoutes"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class LabelRoutes:
    async def _items(self, request: Request, plural: str, example: str) -> list:
        """A JSON body's items: one object, or a list under ``plural``, within limits."""
        try:
            payload = orjson.loads(await self.reader.body(request))
        except orjson.JSONDecodeError as exc:
            raise HTTPProblem(400, f"malformed JSON: {exc}") from None
        items = payload.get(plural, [payload]) if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items:
            raise HTTPProblem(422, f'send {example} or {{"{plural}": [...]}}')
        self.reader.bounded(items)
        return items

    async def feedback_route(self, request: Request) -> Response:
        key = self.authorize(request, "feedback")
        if not self.feedback.accepting:
            raise HTTPProblem(503, "the feedback log cannot be written; retry later")
        items = await self._items(request, "feedback", '{"prediction_id": "...", "label": "..."}')
        rows = checked_feedback(
            items, key, self.lineup.classes(), self.request_ids, _now(),
            answered_by=lambda pid: self.answered.model_of(pid, self.store),
        )  # fmt: skip
        self.feedback.extend(rows)
        return json_response({"accepted": len(rows)}, status=202)

    async def rating_route(self, request: Request) -> Response:
        key = self.authorize(request, "predict")
        if not self.ratings.accepting:
            raise HTTPProblem(503, "the rating log cannot be written; retry later")
        items = await self._items(request, "ratings", '{"prediction_id": "...", "rating": 1-5}')
        rows = checked_ratings(
            items, key, self.lineup.keys, self.request_ids, _now(),
            max_comment=self.config.review.max_comment_chars,
        )  # fmt: skip
        self.ratings.extend(rows)
        return json_response({"accepted": len(rows)}, status=202)
