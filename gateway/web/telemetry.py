"""Request metrics and the request span: route template and status class, never the raw path or the client."""

from __future__ import annotations

import time

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.telemetry import metrics, tracing

__all__ = ["METHODS", "TelemetryMiddleware", "method_label", "route_template"]

#: the methods that are labels; any other token a client sends (h11 accepts any) is "other": labels stay bounded
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(scope: Scope) -> str:
    method = scope.get("method")
    return method if method in METHODS else "other"


def route_template(scope: Scope) -> str:
    """The matched route's template (``/v1/agreements/{agreement_id}/extract``), the dashboard's under its mount
    (``/ui/...``); ``<unmatched>`` for anything no route matched: a raw path can hold a child's id."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "<unmatched>"
    if isinstance(route, Mount):  # the mount matched, none of its routes did
        return str(scope.get("root_path") or "") + "/<unmatched>"
    return str(scope.get("root_path") or "") + path


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}  # an exception that escapes every handler is answered 500 by Starlette

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        method = method_label(scope)
        with tracing.span("http.request", {"http.request.method": method}) as annotate:
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                route = route_template(scope)
                annotate({"http.route": route, "http.response.status_code": status["code"]})
                metrics.REQUESTS.labels(
                    method=method, route=route, status_class=metrics.status_class(status["code"])
                ).inc()
                metrics.REQUEST_SECONDS.labels(method=method, route=route).observe(time.perf_counter() - started)
