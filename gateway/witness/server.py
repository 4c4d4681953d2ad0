"""The witness's HTTP face (C2SP tlog-witness): ``POST /add-checkpoint``, plus ``GET /vkey`` and ``GET /healthz``.

Answers as the spec prescribes: 200 with the cosignature line(s); 409 ``text/x.tlog.size`` with the size the witness
has cosigned; 400, 403, 404, 422 as problem+json (RFC 9457) whose detail names sizes and reasons, never entry data
(the witness sees none: a checkpoint is an origin, a size and a hash).
"""

from __future__ import annotations

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway.witness.state import WitnessRefusal, WitnessState
from tlog import MAX_REQUEST_BYTES, format_size_body

__all__ = ["witness_app"]

_TITLES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Too Large",
    422: "Unprocessable",
}


def _problem(status: int, detail: str) -> Response:
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def witness_app(state: WitnessState) -> Starlette:
    async def add_checkpoint(request: Request) -> Response:
        body = b""
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_REQUEST_BYTES:
                    return _problem(413, f"request body is larger than {MAX_REQUEST_BYTES} bytes")
        except ClientDisconnect:
            return _problem(400, "the client closed the connection mid-body")
        try:
            line = await anyio.to_thread.run_sync(state.add_checkpoint, body)
        except WitnessRefusal as refusal:
            if refusal.status == 409 and refusal.known_size is not None:
                return Response(format_size_body(refusal.known_size), 409, media_type="text/x.tlog.size")
            return _problem(refusal.status, refusal.reason)
        return PlainTextResponse(line)

    async def vkey(_request: Request) -> Response:
        return PlainTextResponse(state.vkey + "\n")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "name": state.name})

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/vkey", vkey, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
