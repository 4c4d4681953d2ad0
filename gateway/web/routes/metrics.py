"""GET /metrics — Prometheus text exposition (gateway.telemetry.metrics); open like /healthz unless the operator
sets ``metrics_token_file``, then ``Authorization: Bearer <that token>``."""

from __future__ import annotations

import hmac

import anyio
import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from gateway.applog import get_logger
from gateway.audit.health import count_left_started
from gateway.errors import AuthError
from gateway.telemetry import metrics
from gateway.web.limits import ServingLimits
from gateway.web.openapi.parts import problem_responses
from gateway.web.routes.common import services

__all__ = ["OPENAPI", "metrics_endpoint"]

_log = get_logger("gateway.metrics")

#: a scrape never waits longer than this for the gateway database (the gauge keeps its last value meanwhile)
_DB_TIMEOUT_S = 2.0


def _check_token(request: Request, expected: str) -> None:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # Constant time, and the same answer for a missing, malformed or wrong token.
    if not hmac.compare_digest((scheme.lower() + " " + presented.strip()).encode(), ("bearer " + expected).encode()):
        metrics.AUTH_FAILURES.labels(reason="metrics_token").inc()
        raise AuthError("GET /metrics needs 'Authorization: Bearer <the metrics token>'")


async def _refresh_left_started(request: Request) -> None:
    found = services(request)
    engine = found.database
    if engine is None:
        return
    try:
        with anyio.fail_after(_DB_TIMEOUT_S):
            count = await anyio.to_thread.run_sync(count_left_started, engine, found.clock(), abandon_on_cancel=True)
    except (TimeoutError, SQLAlchemyError) as exc:
        # A scrape still answers (the log write latency it shows is what the operator needs then); by type only.
        _log.warning("metrics_database_unavailable", error_type=type(exc).__name__)
        return
    metrics.ENTRIES_LEFT_STARTED.set(count)


async def metrics_endpoint(request: Request) -> Response:
    limits: ServingLimits = request.app.state.serving_limits
    if limits.metrics_token is not None:
        _check_token(request, limits.metrics_token)
    await _refresh_left_started(request)
    body = await anyio.to_thread.run_sync(metrics.render)
    return Response(body, headers={"Content-Type": metrics.CONTENT_TYPE})


OPENAPI = {
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text exposition format; docs/operations.md lists them)",
            "description": "Open like /healthz unless the operator configures metrics_token_file; then a bearer "
            "token that is not an API key. Labels are route templates, status classes, problem codes, entity types "
            "and agreement ids: never a principal, a key, a subject id, a client address or a raw path.",
            "security": [],
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **problem_responses({401: "metrics_token_file is set and the token is missing or wrong"}, 401),
            },
        }
    }
}
