"""The Starlette application: routes, error handling as RFC 9457 problems, one log event per request.

Routes live in ``gateway.web.routes`` (one module per capability). This module wires them with the error handlers and
the request-context middleware.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import AsyncIterator

from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.applog import get_logger
from gateway.errors import AuditUnavailableError, GatewayError
from gateway.services import Services
from gateway.telemetry import metrics
from gateway.web.limits import BodyDeadlineMiddleware, ExtractSlots, ServingLimits
from gateway.web.problems import problem_response
from gateway.web.request_ids import KEY_OWNER, KEY_PURPOSE, RequestIds
from gateway.web.routes.accounting_proof import subject_disclosures_proof
from gateway.web.routes.actions import confirm_action, list_actions, request_action
from gateway.web.routes.admin_agreements import (
    accept_version_risk,
    agreement_version,
    agreement_versions,
    apply_agreement,
    approve_version,
    list_admin_agreements,
    preview_version,
    reject_version,
    set_agreement_state,
)
from gateway.web.routes.aggregate import aggregate
from gateway.web.routes.agreements import get_agreement, list_agreements
from gateway.web.routes.claims import verify
from gateway.web.routes.common import new_id, request_id
from gateway.web.routes.compliance import (
    disclosure,
    disclosure_totals,
    export_disclosures,
    list_disclosures,
    receipt,
    subject_disclosures,
)
from gateway.web.routes.extract import extract
from gateway.web.routes.log import checkpoint, consistency, public_key, vkey, witnesses
from gateway.web.routes.metrics import metrics_endpoint
from gateway.web.routes.ops import healthz, openapi, readyz
from gateway.web.routes.records import records
from gateway.web.routes.reidentify import (
    approve_reidentification,
    get_reidentification,
    list_reidentifications,
    request_reidentification,
)
from gateway.web.routes.risk import agreement_risk
from gateway.web.telemetry import TelemetryMiddleware
from gateway.web.ui import create_ui_app

__all__ = ["create_app"]

_log = get_logger("gateway.http")


# -- error handling ---------------------------------------------------------------------------------------------------
async def gateway_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, GatewayError):  # pragma: no cover - registration guarantees the type
        raise exc
    return problem_response(
        exc.status, exc.code, exc.title, exc.detail, headers=exc.headers, request_id=request_id(request)
    )


async def http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover
        raise exc
    titles = {404: "Not found", 405: "Method not allowed"}
    detail = {404: "no such endpoint; see /openapi.json", 405: "this endpoint does not accept that method"}
    return problem_response(
        exc.status_code,
        "not-found" if exc.status_code == 404 else "http-error",
        titles.get(exc.status_code, "HTTP error"),
        detail.get(exc.status_code, str(exc.detail)),
        headers=exc.headers,
        request_id=request_id(request),
    )


async def client_disconnected(request: Request, exc: Exception) -> Response:
    """The client closed the connection in the middle of its request body: nothing was done (the body is read
    before anything is logged or released). A 400 nobody will read, instead of a 500 with a traceback on stderr."""
    _log.info("client_disconnected", request_id=request_id(request))
    return problem_response(
        400,
        "client-disconnected",
        "The client closed the connection",
        "the request body was not received in full; nothing was done",
        request_id=request_id(request),
    )


async def database_error(request: Request, exc: Exception) -> Response:
    """The gateway's own database is down, stalled or locked where a route did not map it (registry errors are
    mapped by the connectors): 503 as for authentication, not 500, and nothing was released. Logged by type only:
    driver messages embed SQL parameters."""
    _log.error("gateway_database_error", error_type=type(exc).__name__, request_id=request_id(request))
    return await gateway_error(
        request, AuditUnavailableError("the gateway database is not reachable; nothing was released; try again later")
    )


async def internal_error(request: Request, exc: Exception) -> Response:
    # Log the type and where it happened, never the message: driver errors embed SQL parameters (personal data).
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"
    _log.error("unhandled_error", error_type=type(exc).__name__, where=where, request_id=request_id(request))
    return problem_response(
        500,
        "internal-error",
        "Internal error",
        "the gateway failed to handle this request; the operator can find it by request_id",
        request_id=request_id(request),
    )


# -- middleware -------------------------------------------------------------------------------------------------------
class RequestContextMiddleware:
    """Request id, security headers, and one structured log event per request (after the body is sent)."""

    def __init__(self, app: ASGIApp, ids: RequestIds) -> None:
        self.app = app
        self.ids = ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1").strip()
        # Never the caller's text (it could be a national ID): a keyed hash of it, or a server id. The response
        # header carries the same logged id, so the caller can pair it with its own (gateway/web/request_ids.py).
        request_id = await self.ids.issue(incoming)
        state["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-request-id", request_id.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": _dedupe(headers)}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            _log.info(
                "request",
                method=scope.get("method"),
                route=getattr(route, "path", "<unmatched>"),
                status=status_holder["status"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                request_id=request_id,
                principal=state.get("principal"),
                agreement=(scope.get("path_params") or {}).get("agreement_id"),
                disclosure_id=state.get("disclosure_id"),
                disclosure_status=state.get("disclosure_status"),
                rows=state.get("rows"),
                bytes=state.get("bytes"),
            )


def _dedupe(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    seen: set[bytes] = set()
    result = []
    for name, value in reversed(headers):
        lower = name.lower()
        if lower in seen and lower in (b"cache-control", b"x-content-type-options", b"referrer-policy"):
            continue
        seen.add(lower)
        result.append((name, value))
    return list(reversed(result))


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    # Everything built at start (catalog, agreements, Presidio's recognizers, spaCy's blank pipelines, the name
    # dictionary's automaton) lives as long as the process: frozen out of the cyclic GC, whose full passes over it
    # otherwise stalled requests for tens of milliseconds (the p99 of single-record requests).
    gc.collect()
    gc.freeze()
    yield
    app.state.services.close()
    metrics.mark_process_dead(os.getpid())  # this worker's live gauges stop counting (multiprocess mode)


def create_app(services: Services, limits: ServingLimits | None = None) -> Starlette:
    limits = limits or ServingLimits()
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/agreements", list_agreements, methods=["GET"]),
        Route("/v1/agreements/{agreement_id}", get_agreement, methods=["GET"]),
        Route("/v1/agreements/{agreement_id}/extract", extract, methods=["POST"]),
        Route("/v1/agreements/{agreement_id}/aggregate", aggregate, methods=["POST"]),
        Route("/v1/agreements/{agreement_id}/risk", agreement_risk, methods=["GET"]),
        Route("/v1/agreements/{agreement_id}/records/{subject_id}", records, methods=["GET"]),
        Route("/v1/agreements/{agreement_id}/verify", verify, methods=["POST"]),
        Route("/v1/agreements/{agreement_id}/versions", agreement_versions, methods=["GET"]),
        Route("/v1/agreements/{agreement_id}/versions/{version}", agreement_version, methods=["GET"]),
        Route("/v1/agreements/{agreement_id}/reidentify", request_reidentification, methods=["POST"]),
        Route("/v1/reidentifications/{request_id}", get_reidentification, methods=["GET"]),
        Route("/v1/admin/agreements", list_admin_agreements, methods=["GET"]),
        Route("/v1/admin/agreements", apply_agreement, methods=["POST"]),
        Route("/v1/admin/agreements/{agreement_id}/state", set_agreement_state, methods=["POST"]),
        Route("/v1/admin/agreements/{agreement_id}/versions/{version}/approve", approve_version, methods=["POST"]),
        Route(
            "/v1/admin/agreements/{agreement_id}/versions/{version}/risk-acceptances",
            accept_version_risk,
            methods=["POST"],
        ),
        Route("/v1/admin/agreements/{agreement_id}/versions/{version}/preview", preview_version, methods=["GET"]),
        Route("/v1/admin/agreements/{agreement_id}/versions/{version}/reject", reject_version, methods=["POST"]),
        Route("/v1/admin/reidentifications", list_reidentifications, methods=["GET"]),
        Route("/v1/admin/reidentifications/{request_id}/approve", approve_reidentification, methods=["POST"]),
        Route("/v1/disclosures", list_disclosures, methods=["GET"]),
        Route("/v1/disclosures/export", export_disclosures, methods=["GET"]),
        Route("/v1/disclosures/totals", disclosure_totals, methods=["GET"]),
        Route("/v1/disclosures/{disclosure_id}", disclosure, methods=["GET"]),
        Route("/v1/disclosures/{disclosure_id}/receipt", receipt, methods=["GET"]),
        Route("/v1/subjects/disclosures", subject_disclosures, methods=["POST"]),
        Route("/v1/subjects/disclosures/proof", subject_disclosures_proof, methods=["POST"]),
        Route("/v1/log/checkpoint", checkpoint, methods=["GET"]),
        Route("/v1/log/proof/consistency", consistency, methods=["GET"]),
        Route("/v1/log/public-key", public_key, methods=["GET"]),
        Route("/v1/admin/actions", list_actions, methods=["GET"]),
        Route("/v1/admin/actions", request_action, methods=["POST"]),
        Route("/v1/admin/actions/{action_id}/confirm", confirm_action, methods=["POST"]),
        Route("/v1/log/vkey", vkey, methods=["GET"]),
        Route("/v1/log/witnesses", witnesses, methods=["GET"]),
        Mount("/ui", app=create_ui_app(services)),  # compliance dashboard (HTML; gateway/web/ui)
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            GatewayError: gateway_error,
            HTTPException: http_error,
            ClientDisconnect: client_disconnected,
            OperationalError: database_error,
            Exception: internal_error,
        },
        lifespan=_lifespan,
    )
    app.state.services = services
    ids = RequestIds(lambda: services.keyring.derive(KEY_OWNER, KEY_PURPOSE).reveal(), new_id)
    app.add_middleware(RequestContextMiddleware, ids=ids)
    # Serving limits (gateway/web/limits.py) and request metrics (outermost: they see every answer, 408s included).
    app.state.serving_limits = limits
    app.state.extract_slots = ExtractSlots(limits.max_concurrent_extracts)
    app.add_middleware(BodyDeadlineMiddleware, timeout_s=limits.body_timeout_s)
    app.add_middleware(TelemetryMiddleware)
    return app
