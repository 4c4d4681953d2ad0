"""Public face of the tamper-evident log: checkpoints, consistency proofs, the verification key."""

from __future__ import annotations

import base64

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from gateway.audit.log import SqlDisclosureLog
from gateway.errors import NotFoundError, ValidationError
from gateway.web.models.base import ref
from gateway.web.models.compliance import Checkpoint, ConsistencyProof
from gateway.web.openapi.parts import COMPLIANCE_PROBLEMS, json_response, problem_responses, query_parameter
from gateway.web.routes.common import authenticate, services
from gateway.web.routes.compliance import reader
from tlog import format_verifier_key

__all__ = ["OPENAPI", "checkpoint", "consistency", "public_key", "vkey", "witnesses"]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


async def checkpoint(request: Request) -> Response:
    await authenticate(request)
    latest = await anyio.to_thread.run_sync(reader(services(request)).latest_checkpoint)
    if latest is None:
        raise NotFoundError("the log has no signed checkpoint yet")
    size, note = latest
    if "text/plain" in request.headers.get("accept", ""):
        return PlainTextResponse(note)
    return JSONResponse({"size": size, "note": note})


def _size(text: str | None, name: str) -> int:
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 15:  # "²".isdigit(), int("²") fails
        raise ValidationError(f"{name} must be a tree size (a non-negative integer)")
    return int(text)


async def consistency(request: Request) -> Response:
    await authenticate(request)
    first = _size(request.query_params.get("first"), "first")
    second = _size(request.query_params.get("second"), "second")
    log_reader = reader(services(request))
    size = await anyio.to_thread.run_sync(log_reader.size)
    if not 0 < first <= second <= size:
        raise ValidationError(f"need 0 < first <= second <= {size} (the current log size)")
    proof = await anyio.to_thread.run_sync(log_reader.consistency_proof, first, second)
    return JSONResponse({"first": first, "second": second, "proof": [_b64(h) for h in proof]})


async def public_key(request: Request) -> Response:
    signer = services(request).signer
    if signer is None:
        raise NotFoundError("this gateway does not sign its log")
    return PlainTextResponse(signer.public_key.to_pem(), media_type="application/x-pem-file")


async def vkey(request: Request) -> Response:
    """The log's verifier key in the C2SP signed-note vkey format: what a witness is configured with."""
    found = services(request)
    log = found.log
    if found.signer is None or not isinstance(log, SqlDisclosureLog):
        raise NotFoundError("this gateway does not sign its log")
    return PlainTextResponse(format_verifier_key(log.origin, found.signer.public_key.raw) + "\n")


async def witnesses(request: Request) -> Response:
    """Witnessing status: the head, the latest size with the quorum, how long the head has gone unwitnessed."""
    await authenticate(request)
    collector = services(request).witnessing
    if collector is None:
        raise NotFoundError("this gateway has no witnesses configured")
    return JSONResponse(await anyio.to_thread.run_sync(collector.status))


_TREE_SIZE = {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999}

OPENAPI = {
    "/v1/log/checkpoint": {
        "get": {
            "summary": "The latest signed checkpoint of the log (Accept: text/plain for the bare note)",
            "responses": {
                "200": {
                    "description": "Tree size and signed note",
                    "content": {
                        "application/json": {"schema": ref(Checkpoint)},
                        "text/plain": {"schema": {"type": "string"}},
                    },
                },
                **problem_responses(COMPLIANCE_PROBLEMS, 401, 404, 503, t404="The log has no signed checkpoint yet"),
            },
        }
    },
    "/v1/log/proof/consistency": {
        "get": {
            "summary": "RFC 9162 consistency proof between two tree sizes of the log",
            "parameters": [
                query_parameter("first", _TREE_SIZE, "The older tree size", required=True),
                query_parameter("second", _TREE_SIZE, "The newer tree size, at most the current one", required=True),
            ],
            "responses": {
                "200": json_response("The proof (base64 hashes)", ConsistencyProof),
                **problem_responses(
                    COMPLIANCE_PROBLEMS,
                    401,
                    422,
                    503,
                    t422="first and second must satisfy 0 < first <= second <= the current size",
                ),
            },
        }
    },
    "/v1/log/public-key": {
        "get": {
            "summary": "The log's Ed25519 verification key (PEM)",
            "security": [],
            "responses": {
                "200": {
                    "description": "PEM public key",
                    "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
                },
                **problem_responses(COMPLIANCE_PROBLEMS, 404, t404="This gateway does not sign its log"),
            },
        }
    },
    "/v1/log/vkey": {
        "get": {
            "summary": "The log's verifier key as a C2SP signed-note vkey (<origin>+<key ID>+<key>), for witnesses",
            "security": [],
            "responses": {
                "200": {"description": "vkey", "content": {"text/plain": {"schema": {"type": "string"}}}},
                **problem_responses(COMPLIANCE_PROBLEMS, 404, t404="This gateway does not sign its log"),
            },
        }
    },
    "/v1/log/witnesses": {
        "get": {
            "summary": "Witnessing status: head size, size with the quorum of cosignatures, unwitnessed age",
            "responses": {
                "200": {"description": "Status", "content": {"application/json": {"schema": {"type": "object"}}}},
                **problem_responses(COMPLIANCE_PROBLEMS, 401, 404, 503, t404="No witnesses are configured"),
            },
        }
    },
}
