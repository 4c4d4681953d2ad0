"""The HTTP protocol ``gateway serve`` runs: uvicorn's h11 protocol with the limits uvicorn lacks.

uvicorn has a keep-alive timeout but none for a request head: a connection that opens and never finishes its headers
(slowloris) is held for ever, and holds a slot of ``limit_concurrency``. This protocol adds

* a **header timeout**: a connection that has not sent a complete request head within ``header_timeout_s`` of its
  opening, or of the first byte of its next request on a kept-alive connection, is closed;
* a **body backstop**: a request whose body is still arriving ``body_timeout_s`` + 2 s after its headers is closed.
  The application answers first (408 through :class:`gateway.web.limits.BodyDeadlineMiddleware`); the backstop is for
  bodies the application never reads (a request refused before its body, still being dribbled in);
* a **capacity answer** in the gateway's format: past ``max_connections`` open connections or requests in flight in
  this process (uvicorn's ``limit_concurrency``, same count), a 503 ``application/problem+json`` with ``Retry-After``
  and ``Connection: close`` instead of uvicorn's plain text.

The limits are per process and set by :func:`configure` from the deployment's settings, which the ASGI factory
(:mod:`gateway.web.asgi`) calls in every worker before the first connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.settings import Settings
from gateway.telemetry import metrics
from gateway.web.problems import problem_response

__all__ = ["PROTOCOL", "GuardedH11Protocol", "ProtocolLimits", "configure", "configure_limits", "current"]

#: the import string uvicorn is given (``--http``): a class, found again by every worker process
PROTOCOL = "gateway.web.serving:GuardedH11Protocol"

#: how much later than the application's 408 the protocol closes a connection whose body is still arriving
_BODY_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class ProtocolLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0


_limits = ProtocolLimits()


def configure(settings: Settings) -> None:
    global _limits  # one value per process, set once at start before any connection
    _limits = ProtocolLimits(settings.header_timeout_s, settings.body_timeout_s)


def configure_limits(limits: ProtocolLimits) -> None:
    """The same, for a server without the gateway's settings (``gateway witness serve``)."""
    global _limits  # one value per process, set once at start before any connection
    _limits = limits


def current() -> ProtocolLimits:
    return _limits


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = _limits
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        # uvicorn's own check answers plain text; this protocol's answers a problem (same count, see _over_capacity).
        self._capacity: int | None = self.limit_concurrency
        self.limit_concurrency = None
        if self._capacity is not None:
            self.app = _CapacityGuard(self.app, self)

    # -- the asyncio.Protocol interface ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head()
        self._cancel_body()
        super().connection_lost(exc)

    # -- timers ------------------------------------------------------------------------------------------------------
    def _track(self) -> None:
        """After h11 has parsed what arrived: a head in progress is timed, a finished one is not; likewise a body."""
        if self.transport is None or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # Waiting for a request head. A kept-alive connection with nothing buffered is uvicorn's keep-alive
            # timeout's to close; once a byte of the next head is here, the head must finish in time.
            if self._head_timer is None and self.conn.trailing_data[0]:
                self._arm_head()
            return
        self._cancel_head()
        if state is h11.SEND_BODY:
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(
                    self._limits.body_timeout_s + _BODY_GRACE_S, self._on_body_timeout
                )
        else:
            self._cancel_body()

    def _arm_head(self) -> None:
        self._cancel_head()
        self._head_timer = self.loop.call_later(self._limits.header_timeout_s, self._on_head_timeout)

    def _cancel_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            metrics.CONNECTIONS_CLOSED.labels(reason="header_timeout").inc()
            self.transport.close()

    def _on_body_timeout(self) -> None:
        self._body_timer = None
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            metrics.CONNECTIONS_CLOSED.labels(reason="body_timeout").inc()
            self.transport.close()

    def over_capacity(self) -> bool:
        # Both sets already hold this connection and this request's task: more than the limit means over it.
        limit = self._capacity
        return limit is not None and (len(self.connections) > limit or len(self.tasks) > limit)


class _CapacityGuard:
    """The application behind a capacity check (uvicorn's limit_concurrency, answered as a problem)."""

    def __init__(self, app: ASGIApp, protocol: GuardedH11Protocol) -> None:
        self.app = app
        self.protocol = protocol

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.protocol.over_capacity():
            metrics.CONNECTIONS_CLOSED.labels(reason="over_capacity").inc()
            response = problem_response(
                503,
                "over-capacity",
                "The gateway is at capacity",
                "too many connections or requests at once; retry shortly",
                headers={"Retry-After": "1", "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
