"""Serving limits inside the application: the request body deadline and per-principal extract slots.

The limits that need the connection itself (a request head that never finishes, too many connections) live in the
HTTP protocol, :mod:`gateway.web.serving`; these are the ones the application sees: a body that does not arrive in
full within ``body_timeout_s`` of the request's headers gets 408 (``request-timeout``) with ``Connection: close``,
and a principal already running ``max_concurrent_extracts`` extracts in this process gets 429
(``too-many-concurrent-extracts``) with ``Retry-After``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ConfigError, RequestTimeoutError, TooManyExtractsError
from gateway.settings import Settings
from gateway.telemetry import metrics

__all__ = [
    "EXTRACT_RETRY_AFTER_S",
    "BodyDeadlineMiddleware",
    "ExtractSlots",
    "HeldResponse",
    "ServingLimits",
    "extract_slots",
    "read_metrics_token",
]

#: Retry-After of a refused extract: extracts last seconds to minutes; a client retrying sooner only adds load
EXTRACT_RETRY_AFTER_S = 5


@dataclass(frozen=True, slots=True)
class ServingLimits:
    body_timeout_s: float = 30.0
    max_concurrent_extracts: int = 4
    #: the bearer token GET /metrics requires; None: open (never printed: repr=False)
    metrics_token: str | None = field(default=None, repr=False)

    @classmethod
    def of(cls, settings: Settings) -> ServingLimits:
        token = read_metrics_token(settings.metrics_token_file) if settings.metrics_token_file else None
        return cls(settings.body_timeout_s, settings.max_concurrent_extracts, token)


def read_metrics_token(path: Path) -> str:
    """The token in ``path`` (one line); a missing, empty, short or group/other-readable file stops the start."""
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{path}: metrics_token_file: cannot read it: {exc.strerror}") from exc
    if mode & 0o077:
        raise ConfigError(f"{path}: metrics_token_file: readable by group or others; chmod 600 it")
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ConfigError(f"{path}: metrics_token_file: expected one token of at least 16 characters, no spaces")
    return token


class BodyDeadlineMiddleware:
    """Bound the time from the request's headers to the last byte of its body (a body sent at one byte per two
    seconds is cut off at ``timeout_s``, not accepted after a minute).

    Only the body is bounded: once it is complete, ``receive`` is passed through (a streamed response waits on it
    for the client's disconnect for as long as the stream lasts).
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = anyio.current_time() + self.timeout_s
        # No body announced (no Content-Length, no chunked transfer): nothing to wait for, so nothing is bounded; a
        # streamed response's wait for the client's disconnect may come long after the deadline.
        headers = dict(scope.get("headers") or [])
        complete = b"transfer-encoding" not in headers and headers.get(b"content-length", b"0").strip() in (b"0", b"")

        async def bounded() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                metrics.CONNECTIONS_CLOSED.labels(reason="body_timeout").inc()
                raise RequestTimeoutError(
                    f"the request body did not arrive in full within {self.timeout_s:g} s; nothing was done"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, bounded, send)


class ExtractSlots:
    """How many extracts each principal runs now in this process; at most ``limit`` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def running(self, principal: str) -> int:
        return self._running.get(principal, 0)

    def acquire(self, principal: str) -> Callable[[], None]:
        """A slot for ``principal`` (TooManyExtractsError when it has none left); call the result once to free it."""
        with self._lock:
            held = self._running.get(principal, 0)
            if held >= self.limit:
                metrics.EXTRACT_SLOTS_REFUSED.inc()
                raise TooManyExtractsError(self.limit, EXTRACT_RETRY_AFTER_S)
            self._running[principal] = held + 1
        metrics.ACTIVE_EXTRACTS.inc()
        freed = False

        def release() -> None:
            nonlocal freed
            with self._lock:
                if freed:
                    return
                freed = True
                left = self._running[principal] - 1
                if left:
                    self._running[principal] = left
                else:
                    del self._running[principal]
            metrics.ACTIVE_EXTRACTS.dec()

        return release


class HeldResponse(Response):
    """``inner``, sent as it is; ``release`` runs once the response is over (sent, failed or cut by the client)."""

    def __init__(self, inner: Response, release: Callable[[], None]) -> None:
        # Not Response.__init__: nothing is rendered here; the attributes others read are the inner response's.
        self.inner = inner
        self.release = release
        self.status_code = inner.status_code
        self.background = None
        self.raw_headers = inner.raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            self.release()


def extract_slots(request: Request) -> ExtractSlots:
    slots: ExtractSlots = request.app.state.extract_slots
    return slots
