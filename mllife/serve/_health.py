"""What the server says about itself (``/health``) and what it accepts as feedback:
checks kept apart from the routes that answer with them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mllife.monitoring.log_format import PREDICTION_ID
from mllife.serve._requests import HTTPProblem
from mllife.serve.keys import ApiKey

__all__ = ["checked_feedback", "health_body"]


def checked_feedback(
    items: list, key: ApiKey, classes: set[str], request_ids, received: datetime, *, answered_by
):
    """The feedback rows to log, or an HTTPProblem: 403 for predictions answered to
    another key or by a model the key may not use, 422 for ids or labels that are not
    valid. ``answered_by(prediction_id)``: the model that answered it, from the
    prediction log, or None when the log holds no such prediction."""
    rows, problems, refused = [], [], []
    for i, item in enumerate(items):
        pid = item.get("prediction_id") if isinstance(item, dict) else None
        label = item.get("label") if isinstance(item, dict) else None
        if not isinstance(pid, str) or not PREDICTION_ID.match(pid):
            problems.append(f"item {i}: prediction_id {pid!r} is not an id /predict returned")
        elif key.may_label_any() and (model := answered_by(pid)) is None:
            problems.append(f"item {i}: prediction {pid} is not in the prediction log")
        elif key.may_label_any() and not key.may_use(model):
            refused.append(
                f"item {i}: prediction {pid} was answered by model {model!r}, which key"
                f" {key.name!r} may not use"
            )
        elif not key.may_label_any() and not request_ids.issued_to(pid, key.name):
            refused.append(
                f"item {i}: prediction {pid} was not answered to key {key.name!r}; a key"
                " labels its own predictions that exist (or needs the feedback_any scope)"
            )
        elif not isinstance(label, str) or label not in classes:
            problems.append(f"item {i}: label {label!r} is not one of {sorted(classes)}")
        else:
            rows.append((pid, label, key.name, received))
    if refused:
        raise HTTPProblem(403, "; ".join(refused[:3]), refused[:20])
    if problems:
        raise HTTPProblem(422, "; ".join(problems[:3]), problems[:20])
    return rows


def model_body(lineup) -> dict[str, Any]:
    """``/model``: the champion and the rollout beside it."""
    challenger = lineup.challenger
    return {
        **lineup.champion.describe(),
        "rollout": {
            "mode": lineup.mode,
            "share": lineup.share if lineup.mode == "canary" else None,
            "challenger": None if challenger is None else challenger.describe(),
        },
    }


def health_body(server, *, detailed: bool) -> dict[str, Any]:
    """Open to anyone (load balancers have no key): whether ``server`` can answer and
    log. What is deployed (hashes) and the errors' details (they name paths) only when
    ``detailed`` (a key that may call /model)."""
    lineup, log = server.lineup, server.predictions
    problems, details = [], []
    if lineup.champion is None:
        problems.append("no champion deployed")
        details.append("no champion deployed")
    if server.reload_error:
        problems.append("a new lineup failed to load")
        details.append(f"a new lineup failed to load: {server.reload_error}")
    for each in (log, server.feedback):
        if each is not None and each.last_error:
            problems.append(f"the {each.prefix} log cannot be written (retrying)")
            details.append(f"{each.prefix} log: {each.last_error}")
    body: dict[str, Any] = {
        "status": "ok" if not problems else "degraded",
        "problems": details if detailed else problems,
        "rollout": lineup.mode,
        "log": None
        if log is None
        else {
            "buffered": log.buffered,
            "rows_written": log.rows_written,
            "writer_cpu_seconds": round(log.cpu_seconds, 6),
        },
        "shadow_errors": server.shadow_errors,
    }
    keeper = getattr(server, "keeper", None)
    if keeper is not None:  # served images kept for the review desk ([review])
        body["review_inputs"] = {"kept": keeper.kept, "not_kept": keeper.not_kept,
                                 "bytes_kept": keeper.bytes_kept}  # fmt: skip
    if detailed:
        body["champion"] = None if lineup.champion is None else lineup.champion.ref.model_hash
        body["challenger"] = None if lineup.challenger is None else lineup.challenger.ref.model_hash
    return body
