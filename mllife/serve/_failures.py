"""Requests a model failed to answer: which failures are the server's (5xx), and how they
reach the console without a wall of tracebacks (they are logged per model and role by
``_log.FailureLog``: the rollout judge compares error rates from them)."""

from __future__ import annotations

import sys
import traceback

from mllife._errors import DataError
from mllife.serve._requests import HTTPProblem

__all__ = ["report_model_failure", "server_fault"]


def report_model_failure(seen: set[tuple[str, str]], served, exc: Exception) -> None:
    """The whole traceback the first time a model fails this way (``seen`` remembers),
    one line after: a failing canary must not flood the server's output."""
    key = (served.ref.model_hash, type(exc).__name__)
    if key in seen:
        print(f"mllife serve: {served.ref.name} failed again: {exc}", file=sys.stderr)
        return
    seen.add(key)
    print(f"mllife serve: {served.ref.name} failed to predict:", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)


def server_fault(exc: Exception) -> bool:
    """Whether the caller gets a 5xx for ``exc`` (a bad input is the caller's fault)."""
    if isinstance(exc, HTTPProblem):
        return exc.status >= 500
    return not isinstance(exc, DataError)
