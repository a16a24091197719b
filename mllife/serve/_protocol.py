"""uvicorn's httptools protocol with deadlines for slow clients.

uvicorn closes a connection idle *between* requests (``timeout_keep_alive``), but not
one that sends its headers or its body a byte at a time: such a client holds a
connection (and its buffers) for as long as it likes. Here the headers must arrive
within ``header_timeout`` of the request's first byte (or of the connection, for the
first request), and the body within ``body_timeout`` of the headers; past either the
connection is closed. A request whose body never completes is then seen by the app as
a client disconnect.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DeadlineHttpToolsProtocol", "deadline_protocol"]


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """The deadlines are class attributes: ``deadline_protocol`` makes a subclass with
    the project's, and ``mllife serve --workers`` sets them in each worker process."""

    header_timeout: float = 5.0
    body_timeout: float = 20.0
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # the keep-alive timer (uvicorn's own) takes over between requests
        self._disarm()
        super().on_response_complete()


def deadline_protocol(*, header_timeout: float, body_timeout: float) -> type[HttpToolsProtocol]:
    """A protocol class for ``uvicorn.run(http=...)`` with these deadlines (seconds)."""
    return type(
        "DeadlineHttpToolsProtocol",
        (DeadlineHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )
