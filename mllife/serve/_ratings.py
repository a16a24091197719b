"""``POST /rating``: a user rates a prediction answered to their key.

``{"prediction_id": "...", "rating": 1-5 | "up" | "down", "comment": "..."}`` or
``{"ratings": [...]}``. Thumbs count as 5 (up) and 1 (down). A prediction answered to
another key is 403; an id no key was answered is 404; a bad rating or comment is 422;
in each case nothing of the request is stored. Comments are kept as text.
"""

from __future__ import annotations

from datetime import datetime

from mllife.monitoring.log_format import PREDICTION_ID
from mllife.serve._requests import HTTPProblem
from mllife.serve.keys import ApiKey

__all__ = ["checked_ratings"]

THUMBS = {"up": 5, "down": 1}


def _rating(value) -> int | None:
    if isinstance(value, str):
        return THUMBS.get(value.strip().lower())
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= 5 else None


def checked_ratings(
    items: list, key: ApiKey, keys: list[ApiKey], request_ids, received: datetime, *,
    max_comment: int,
) -> list[tuple]:  # fmt: skip
    """The rating rows to log, or the HTTPProblem that refuses all of them."""
    rows, missing, refused, problems = [], [], [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"item {i}: a rating is an object, got {type(item).__name__}")
            continue
        pid, comment = item.get("prediction_id"), item.get("comment")
        rating = _rating(item.get("rating"))
        if not isinstance(pid, str) or not PREDICTION_ID.match(pid):
            missing.append(f"item {i}: {pid!r} is not a prediction id /predict returned")
        elif not request_ids.issued_to(pid, key.name):
            if any(request_ids.issued_to(pid, other.name) for other in keys):
                refused.append(f"item {i}: prediction {pid} was not answered to key {key.name!r}")
            else:
                missing.append(f"item {i}: no prediction {pid}")
        elif rating is None:
            problems.append(f'item {i}: rating {item.get("rating")!r} must be 1-5, "up" or "down"')
        elif comment is not None and (not isinstance(comment, str) or len(comment) > max_comment):
            problems.append(f"item {i}: comment must be text of at most {max_comment} characters")
        else:
            rows.append((pid, rating, comment, key.name, received))
    if refused:
        raise HTTPProblem(403, "; ".join(refused[:3]), refused[:20])
    if missing:
        raise HTTPProblem(404, "; ".join(missing[:3]), missing[:20])
    if problems:
        raise HTTPProblem(422, "; ".join(problems[:3]), problems[:20])
    return rows
