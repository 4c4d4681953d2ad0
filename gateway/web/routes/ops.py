"""Operations endpoints: liveness, readiness, OpenAPI."""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import GatewayError
from gateway.web.models.ops import Liveness, Readiness
from gateway.web.openapi.parts import PROBLEM_SCHEMA, json_response
from gateway.web.problems import problem_response
from gateway.web.routes.common import request_id, services

__all__ = ["OPENAPI", "healthz", "openapi", "readyz"]


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    found = services(request)
    checks: dict[str, str] = {}
    for name, check in (("disclosure_log", found.log.ping), ("registry", found.connector.ping)):
        try:
            await anyio.to_thread.run_sync(check)
            checks[name] = "ok"
        except GatewayError as exc:
            checks[name] = exc.code
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    return problem_response(
        503,
        "not-ready",
        "Not ready",
        "a dependency is unavailable",
        request_id=request_id(request),
        extra={"checks": checks},
    )


async def openapi(_request: Request) -> Response:
    # Imported here: the document is assembled from the route modules' OPENAPI declarations, this one's included.
    from gateway.web.openapi.document import openapi_document

    return JSONResponse(openapi_document())


OPENAPI = {
    "/healthz": {
        "get": {
            "summary": "Liveness",
            "security": [],
            "responses": {"200": json_response("The process is up", Liveness)},
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {"200": json_response("OpenAPI 3.1", {"type": "object"})},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: disclosure log and registry reachable",
            "security": [],
            "responses": {
                "200": json_response("Ready", Readiness),
                "503": {
                    "description": "Not ready: checks names the dependency that failed (problem not-ready)",
                    "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
                },
            },
        }
    },
}
