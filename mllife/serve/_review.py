"""The review desk's pages, mounted at ``/review`` on the model server.

Only a key with the ``review`` scope gets in: a reviewer signs in once with the key; the
session is a signed cookie (Starlette's ``SessionMiddleware``, SameSite=Strict,
HttpOnly) holding the key's name and hash, checked against the active keys on every
request, so a revoked key is out at once. Every POST carries a CSRF token (``asgi-csrf``:
a signed double-submit cookie). Pages are Jinja2 templates with autoescaping: labels,
problem names, comments and features are text, never markup. The queue and the actions
are ``mllife.review``'s, shared with ``mllife review``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from datetime import date
from urllib.parse import urlencode

import anyio
import jinja2
from asgi_csrf import asgi_csrf
from PIL import Image
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from mllife._errors import ProblemError, ReviewError
from mllife.evaluation.slices import latest_slices
from mllife.monitoring.kept_inputs import kept_input
from mllife.review.desk import ReviewDesk
from mllife.review.from_slice import problem_from_slice
from mllife.review.problem_files import problem_names
from mllife.review.queue import QueueFilter, review_queue
from mllife.serve._requests import HTTPProblem
from mllife.serve.keys import ApiKey, find_key
from mllife.storage.signing import project_key

__all__ = ["review_app"]

SESSION_HOURS = 8
_FILTERS = ("label", "model", "since", "until")


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("mllife.serve", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _secret(server, purpose: str) -> str:
    key = project_key(server.config.state_dir / "serving.key")
    return hmac.new(key, purpose.encode(), hashlib.sha256).hexdigest()


class ReviewPages:
    def __init__(self, server) -> None:
        self.server = server
        self.templates = _templates()

    # -- who is reviewing --------------------------------------------------------------

    def reviewer(self, request: Request) -> ApiKey | None:
        """The signed-in review key; on a GET, also a key sent as for the API (scripts,
        ``bench_review``). Any other key is refused (403) by the caller."""
        if request.method == "GET" and (
            request.headers.get("authorization") or request.headers.get("x-api-key")
        ):
            return self.server.authorize(request, "review")  # 401/403 as for the API
        name, key_hash = request.session.get("key"), request.session.get("key_hash")
        for key in self.server.lineup.keys:
            if key.name == name and hmac.compare_digest(key.key_hash, key_hash or ""):
                return key if key.may_review() else None
        return None

    def _desk(self) -> ReviewDesk:
        server = self.server
        return ReviewDesk(
            server.config, server.store, server.feedback, server.reviews,
            sorted(server.lineup.classes()),
        )  # fmt: skip

    def _render(self, request: Request, name: str, status: int = 200, **context) -> Response:
        html = self.templates.get_template(name).render(
            csrftoken=request.scope["csrftoken"](), **context
        )
        return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)

    # -- routes ------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        form = await request.form()
        token = str(form.get("key", "")).strip()
        key = find_key(self.server.lineup.keys_by_hash, token)
        if key is None or not key.may_review():
            why = (
                "unknown or revoked key" if key is None else f"key {key.name!r} has no review scope"
            )
            return self._render(request, "review_login.html", status=403, error=why)
        request.session.clear()
        request.session.update({"key": key.name, "key_hash": key.key_hash})
        return RedirectResponse("./", status_code=303)

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("./", status_code=303)

    async def queue(self, request: Request) -> Response:
        key = self.reviewer(request)
        if key is None:  # the sign-in page
            return self._render(request, "review_login.html", error=None)
        try:
            filters = _filters(request.query_params, key)
            page = int(request.query_params.get("page", "1"))
        except ValueError as exc:
            return Response(str(exc), status_code=422, media_type="text/plain")
        server = self.server
        listed = await anyio.to_thread.run_sync(
            lambda: review_queue(server.config, server.store, filters=filters, page=page)
        )
        names = await anyio.to_thread.run_sync(problem_names, server.config, server.store)
        slices = await anyio.to_thread.run_sync(latest_slices, server.store)
        chosen = {k: request.query_params.get(k, "") for k in _FILTERS}
        return self._render(
            request, "review.html", page=listed, reviewer=key.name, classes=sorted(
                server.lineup.classes()), problems=names, filters=chosen,
            query=urlencode({k: v for k, v in chosen.items() if v}),
            images=server.config.data.kind == "images", flash=request.session.pop("flash", None),
            slices=slices.to_dicts(),
        )  # fmt: skip

    async def act(self, request: Request) -> Response:
        key = self.reviewer(request)
        if key is None:
            return self._render(request, "review_login.html", status=401, error=None)
        form = await request.form()
        desk = self._desk()
        back = "./" + (f"?{form.get('query')}" if form.get("query") else "")
        try:
            request.session["flash"] = await anyio.to_thread.run_sync(_act, desk, form, key)
        except ReviewError as exc:
            if exc.status in (403, 404):  # no such prediction, or not this reviewer's
                return Response(str(exc), status_code=exc.status, media_type="text/plain")
            request.session["flash"] = f"Not done: {exc}"  # fixable on the page
        return RedirectResponse(back, status_code=303)

    async def input(self, request: Request) -> Response:
        key = self.reviewer(request)
        if key is None:
            return Response("sign in with a review key", status_code=401)
        pid = request.path_params["prediction_id"]
        server = self.server
        try:
            (item,) = await anyio.to_thread.run_sync(
                lambda: self._desk().items([pid], allowed_models=key.models)
            )
        except ReviewError as exc:
            return Response(str(exc), status_code=exc.status, media_type="text/plain")
        payload = await anyio.to_thread.run_sync(
            kept_input, server.config.served_inputs_dir, item.input_hash
        )
        kind = _image_type(payload) if payload is not None else None
        if kind is None:
            return Response("this input was not kept", status_code=404, media_type="text/plain")
        return Response(
            payload, media_type=kind, headers={**_PAGE_HEADERS, "cache-control": "private"}
        )


_PAGE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; img-src 'self' data:;"
    " style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _image_type(payload: bytes) -> str | None:
    """The image's MIME type as PIL reads it; None for anything not an image."""
    try:
        kind = Image.open(io.BytesIO(payload)).get_format_mimetype()
    except Exception:  # not an image PIL reads: not served as one
        return None
    return kind if kind and kind.startswith("image/") else None


def _filters(params, key: ApiKey) -> QueueFilter:
    def day(name: str) -> date | None:
        text = params.get(name) or None
        try:
            return None if text is None else date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None

    return QueueFilter(
        label=params.get("label") or None,
        model=params.get("model") or None,
        since=day("since"),
        until=day("until"),
        allowed_models=key.models,
    )


def _act(desk: ReviewDesk, form, key: ApiKey) -> str:
    """Carry out the button pressed (``do``: ``label:<id>``, ``skip:<id>``,
    ``pattern:<id>`` or ``pattern:checked``); what was done, in words."""
    action, _, target = str(form.get("do", "")).partition(":")
    if action == "slice":  # a weak spot the latest run found, kept as a known problem
        name = str(form.get(f"slice_problem:{target}", "")).strip()
        try:
            added, left_out, rule = problem_from_slice(
                desk.config, desk.store, number=int(target), name=name, classes=desk.classes
            )
        except (ProblemError, ValueError) as exc:  # fixable on the page
            raise ReviewError(str(exc)) from None
        return (
            f"Added {added} pattern(s) from slice {target} ({rule}) to {name!r}"
            + (f"; {left_out} row(s) left out" if left_out else "")
            + "; the next run scores every model version on them."
        )
    ids = [str(p) for p in form.getlist("pid")] if target == "checked" else [target]
    items = desk.items(ids, allowed_models=key.models) if ids and ids[0] else []
    labels = {
        i.prediction_id: str(form.get(f"label:{i.prediction_id}", i.predicted)) for i in items
    }
    if action == "label" and len(items) == 1:
        desk.label(items[0], labels[items[0].prediction_id], reviewer=key.name)
        return f"Labelled {items[0].prediction_id} as {labels[items[0].prediction_id]!r}."
    if action == "skip" and len(items) == 1:
        desk.skip(items[0], reviewer=key.name)
        return f"Skipped {items[0].prediction_id}."
    if action == "pattern":
        problem = str(form.get("new_problem", "")).strip() or str(form.get("problem", ""))
        added = desk.add_to_problem(
            items, problem=problem, labels=labels, kind=str(form.get("kind", "positive")),
            reviewer=key.name, description=str(form.get("description", "")),
        )  # fmt: skip
        return (
            f"Added {added} pattern(s) to {problem!r} (of {len(items)}); the next run scores"
            " every model version on them."
        )
    raise ReviewError("choose an action: label, skip, add to a problem or keep a slice")


async def _refused(request: Request, exc: HTTPProblem) -> Response:
    return Response(exc.message, status_code=exc.status, media_type="text/plain")


def review_app(server) -> object:
    """The desk as an ASGI app for ``Mount("/review", ...)``."""
    pages = ReviewPages(server)
    app = Starlette(
        routes=[
            Route("/", pages.queue, methods=["GET"]),
            Route("/login", pages.login, methods=["POST"]),
            Route("/logout", pages.logout, methods=["POST"]),
            Route("/act", pages.act, methods=["POST"]),
            Route("/input/{prediction_id}", pages.input, methods=["GET"]),
        ],
        exception_handlers={HTTPProblem: _refused},
    )
    sessions = SessionMiddleware(
        app,
        secret_key=_secret(server, "review-session"),
        session_cookie="mllife_review",
        max_age=SESSION_HOURS * 3600,
        path="/review",
        same_site="strict",
    )
    return asgi_csrf(
        sessions,
        signing_secret=_secret(server, "review-csrf"),
        cookie_path="/review",
        cookie_samesite="Strict",
        # a POST without any cookie is still checked (the library lets it through by
        # default): signing in is a POST before there is a session
        always_protect={"/review/login", "/review/act", "/review/logout"},
    )
