"""uvicorn's httptools protocol with deadlines for slow clients.

uvicorn closes a connection idle *between* requests (``timeout_keep_alive``), but not
one that sends its headers or its body a byte at a time: such a client holds a
connection (and its buffers) for as long as it likes. Here the headers must arrive
within ``header_timeout`` of the request's first byte (or of the connection, for the
first request), and the body within ``body_timeout`` of the headers; past either the
connection is closed (within ``SWEEP_SECONDS``). A request whose body never completes is
then seen by the app as a client disconnect.
"""

from __future__ import annotations

import asyncio
import weakref

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["DeadlineHttpToolsProtocol", "deadline_protocol"]

#: how often the open connections' deadlines are looked at: a slow client is cut off
#: within this much of its deadline
SWEEP_SECONDS = 0.25


class _Sweeper:
    """The deadlines of one event loop's connections, checked together every
    ``SWEEP_SECONDS``: a request costs two float stores instead of arming and cancelling
    three timers (measured: ~8 us of CPU per single-row request)."""

    _of_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.connections: set[DeadlineHttpToolsProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Sweeper:
        sweeper = cls._of_loop.get(loop)
        if sweeper is None:
            sweeper = cls._of_loop[loop] = cls(loop)
        return sweeper

    def add(self, connection: DeadlineHttpToolsProtocol) -> None:
        self.connections.add(connection)
        if self._timer is None:
            self._timer = self.loop.call_later(SWEEP_SECONDS, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in [c for c in self.connections if c.deadline < now]:
            connection.expire()
        self._timer = self.loop.call_later(SWEEP_SECONDS, self._sweep) if self.connections else None


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """The deadlines are class attributes: ``deadline_protocol`` makes a subclass with
    the project's, and ``mllife serve --workers`` sets them in each worker process."""

    header_timeout: float = 5.0
    body_timeout: float = 20.0
    #: the loop time past which this connection is closed (inf: none now)
    deadline: float = float("inf")

    def expire(self) -> None:
        self.deadline = float("inf")
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.header_timeout
        _Sweeper.of(self.loop).add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        _Sweeper.of(self.loop).connections.discard(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.deadline = self.loop.time() + self.header_timeout

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.deadline = self.loop.time() + self.body_timeout

    def on_message_complete(self) -> None:
        self.deadline = float("inf")
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # the keep-alive timer (uvicorn's own) takes over between requests
        self.deadline = float("inf")
        super().on_response_complete()


def deadline_protocol(*, header_timeout: float, body_timeout: float) -> type[HttpToolsProtocol]:
    """A protocol class for ``uvicorn.run(http=...)`` with these deadlines (seconds)."""
    return type(
        "DeadlineHttpToolsProtocol",
        (DeadlineHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )
