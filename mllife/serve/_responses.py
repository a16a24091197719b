"""Responses of the model server: JSON bodies, and refusals as a status with a message
(and, for bad inputs, one line per offending value)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from mllife._errors import DataError
from mllife.serve._requests import HTTPProblem

__all__ = ["bad_input", "json_response", "problem"]


def json_response(payload: Any, status: int = 200, headers: dict | None = None, background=None):
    return Response(
        orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
        background=background,
    )


async def problem(request: Request, exc: HTTPProblem) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if getattr(exc, "retry_after", None) is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    body = {"error": exc.message}
    if exc.problems:
        body["problems"] = exc.problems
    return json_response(body, status=exc.status, headers=headers)


async def bad_input(request: Request, exc: DataError) -> Response:
    problems = getattr(exc, "problems", None)
    body = {"error": str(exc)}
    if problems:
        body["problems"] = problems
    return json_response(body, status=422)
