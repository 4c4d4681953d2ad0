"""The Starlette application: authentication, agreement resolution, the extract path, operations endpoints.

The handler for an extract follows the flow of DESIGN.md §1: authenticate → resolve the agreement (party, validity)
→ plan (pure) → write-ahead log entry (durable; 503 and nothing released if it fails) → push the query down to the
registry → transform each batch with the compiled plan → stream → finalize the entry (completed / aborted / failed,
rows, bytes, SHA-256 of exactly the bytes handed to the server).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policies import Agreement, ColumnClass, ReleasePlan, RequestError, parse_extract_request, plan_extract
from transforms import CsvWriter, NdjsonWriter, compile_plan

from .auth import Principal
from .disclosure_log import DisclosureStart
from .errors import (
    AuthError,
    ForbiddenError,
    GatewayError,
    MalformedRequestError,
    NotFoundError,
    NotImplementedByGatewayError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from .keysource import AgreementKeySource
from .logconfig import get_logger
from .openapi import openapi_document
from .problems import problem_response
from .services import Services

__all__ = ["create_app"]

_log = get_logger("gateway.http")
OVERSIGHT_ROLES = frozenset({"compliance", "admin", "approver"})
MEDIA_TYPES = {"ndjson": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}


def _new_id() -> str:
    # Time-ordered (48-bit milliseconds) + 80 random bits: sortable, unguessable, no coordination between processes.
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _request_id(request: Request) -> str:
    rid: str = request.scope.get("state", {}).get("request_id", "")
    return rid


# -- authentication and agreement resolution --------------------------------------------------------------------------
async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise AuthError("send your API key as 'Authorization: Bearer <key>'")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise AuthError("the Authorization header must be 'Bearer <key>'")
    principal = await anyio.to_thread.run_sync(_services(request).authenticator.authenticate, credential.strip())
    if principal is None:
        raise AuthError("the API key is not valid (unknown, revoked, or its principal is disabled)")
    request.scope.setdefault("state", {})["principal"] = principal.name
    return principal


def resolve_agreement(services: Services, principal: Principal, agreement_id: str) -> Agreement:
    agreement = services.agreements.get(agreement_id)
    if agreement is None:
        raise NotFoundError(f"there is no agreement with id {agreement_id[:64]!r}; GET /v1/agreements lists yours")
    if not agreement.is_party(principal.name):
        raise ForbiddenError(f"you are not a party to agreement {agreement.id!r}", code="not-a-party")
    problem = agreement.validity_problem(services.today())
    if problem is not None:
        raise ForbiddenError(problem, code="agreement-not-valid")
    return agreement


async def read_json(request: Request, limit: int) -> Any:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise UnsupportedMediaTypeError("send the request body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"the request body is larger than {limit} bytes")
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequestError("the request body is not valid JSON") from exc
    except RecursionError as exc:
        raise MalformedRequestError("the request body is nested too deeply") from exc


# -- the log's view of a plan ---------------------------------------------------------------------------------------
def plan_for_log(plan: ReleasePlan, filter_key: bytes) -> dict[str, Any]:
    """The plan as the log records it: filter values on direct identifiers are replaced by keyed hashes, so the log
    can show that two requests asked for the same person without holding the identifier itself."""
    described = plan.describe()
    filters = []
    for flt, shown in zip(plan.filters, described["filters"], strict=True):
        column = plan.dataset.columns[flt.column]
        if column.cls is ColumnClass.DIRECT_IDENTIFIER:
            values = flt.value if isinstance(flt.value, tuple) else (flt.value,)
            hashed = [hmac.new(filter_key, str(v).encode(), hashlib.sha256).hexdigest()[:32] for v in values]
            shown = {**shown, "value": {"hmac": hashed if isinstance(flt.value, tuple) else hashed[0]}}
        filters.append(shown)
    described["filters"] = filters
    return described


# -- handlers -------------------------------------------------------------------------------------------------------
async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = _services(request)
    checks: dict[str, str] = {}
    for name, check in (("disclosure_log", services.log.ping), ("registry", services.connector.ping)):
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
        request_id=_request_id(request),
        extra={"checks": checks},
    )


async def openapi(_request: Request) -> Response:
    return JSONResponse(openapi_document())


async def list_agreements(request: Request) -> Response:
    principal = await authenticate(request)
    services = _services(request)
    today = services.today()
    oversight = bool(principal.roles & OVERSIGHT_ROLES)
    items = []
    for agreement in sorted(services.agreements.values(), key=lambda a: a.id):
        if agreement.is_party(principal.name) or oversight:
            item = agreement.describe()
            item["role"] = "party" if agreement.is_party(principal.name) else "oversight"
            item["valid_today"] = agreement.validity_problem(today) is None
            items.append(item)
    return JSONResponse({"agreements": items})


async def extract(request: Request) -> Response:
    principal = await authenticate(request)
    services = _services(request)
    agreement = resolve_agreement(services, principal, request.path_params["agreement_id"])
    body = await read_json(request, services.max_body_bytes)
    try:
        parsed = parse_extract_request(body, max_limit=services.max_rows_per_request)
        plan = plan_extract(agreement, parsed, today=services.today())
    except RequestError as exc:
        raise ValidationError(str(exc), code=exc.code) from exc
    if agreement.k_anonymity is not None:
        # Fail closed: releasing without a control the approver relied on would break the agreement.
        raise NotImplementedByGatewayError(
            f"agreement {agreement.id!r} requires k-anonymity, which this gateway version does not enforce yet; "
            "nothing was released"
        )
    compiled = compile_plan(plan, AgreementKeySource(services.keyring, agreement.id))
    writer: NdjsonWriter | CsvWriter = (
        NdjsonWriter(compiled.columns) if plan.format == "ndjson" else CsvWriter(compiled.columns)
    )
    filter_key = services.keyring.derive("log:subject-index", "filter-values").reveal()
    disclosure_id = _new_id()
    start = DisclosureStart(
        disclosure_id=disclosure_id,
        request_id=_request_id(request),
        principal=principal.name,
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_digest=agreement.digest,
        approved_by=agreement.approved_by,
        legal_basis=agreement.legal_basis,
        purpose=agreement.purpose,
        operation="extract",
        plan=plan_for_log(plan, filter_key),
        started_at=services.clock(),
    )
    # Write-ahead: durable before the registry is queried and before any byte can leave.
    await anyio.to_thread.run_sync(services.log.start, start)
    request.scope.setdefault("state", {})["disclosure_id"] = disclosure_id
    batch_rows = services.batch_rows

    def open_stream() -> tuple[Iterator[list[tuple[Any, ...]]], list[tuple[Any, ...]] | None]:
        batches = services.connector.stream(plan, batch_rows=batch_rows)
        return batches, next(batches, None)

    try:
        batches, first = await anyio.to_thread.run_sync(open_stream)
    except Exception as exc:
        code = exc.code if isinstance(exc, GatewayError) else "internal-error"
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                lambda: services.log.finish(disclosure_id, status="failed", rows=0, nbytes=0, sha256=None, error=code)
            )
        raise

    def render(batch: list[tuple[Any, ...]]) -> bytes:
        return writer.batch(compiled.rows(batch))

    def step() -> tuple[int, bytes] | None:
        batch = next(batches, None)
        if batch is None:
            return None
        return len(batch), render(batch)

    async def body_iter() -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        rows = nbytes = 0
        status, error = "aborted", None
        try:
            if isinstance(writer, CsvWriter):
                head = writer.header()
                digest.update(head)
                nbytes += len(head)
                yield head
            if first is not None:
                chunk = await anyio.to_thread.run_sync(render, first)
                digest.update(chunk)
                rows += len(first)
                nbytes += len(chunk)
                yield chunk
                while (item := await anyio.to_thread.run_sync(step)) is not None:
                    count, chunk = item
                    digest.update(chunk)
                    rows += count
                    nbytes += len(chunk)
                    yield chunk
            status = "completed"
        except GatewayError as exc:
            error = exc.code
            raise
        except Exception:
            error = "internal-error"
            _log.exception("stream_failed", disclosure_id=disclosure_id)
            raise
        finally:
            close = getattr(batches, "close", None)
            with anyio.CancelScope(shield=True):
                if close is not None:
                    await anyio.to_thread.run_sync(close)
                await anyio.to_thread.run_sync(
                    lambda: services.log.finish(
                        disclosure_id, status=status, rows=rows, nbytes=nbytes, sha256=digest.hexdigest(), error=error
                    )
                )
                request.scope.setdefault("state", {}).update(rows=rows, bytes=nbytes, disclosure_status=status)

    return StreamingResponse(
        body_iter(),
        media_type=MEDIA_TYPES[plan.format],
        headers={"X-Disclosure-Id": disclosure_id, "Cache-Control": "no-store"},
    )


# -- error handling ---------------------------------------------------------------------------------------------------
async def gateway_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, GatewayError):  # pragma: no cover - registration guarantees the type
        raise exc
    return problem_response(
        exc.status, exc.code, exc.title, exc.detail, headers=exc.headers, request_id=_request_id(request)
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
        request_id=_request_id(request),
    )


async def internal_error(request: Request, exc: Exception) -> Response:
    # Log the type and where it happened, never the message: driver errors embed SQL parameters (personal data).
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"
    _log.error("unhandled_error", error_type=type(exc).__name__, where=where, request_id=_request_id(request))
    return problem_response(
        500,
        "internal-error",
        "Internal error",
        "the gateway failed to handle this request; the operator can find it by request_id",
        request_id=_request_id(request),
    )


# -- middleware -------------------------------------------------------------------------------------------------------
class RequestContextMiddleware:
    """Request id, security headers, and one structured log event per request (after the body is sent)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        # Accept a caller's id only when it is short and plain, so it cannot smuggle data into the log.
        request_id = incoming if 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum() else _new_id()
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
    yield
    app.state.services.close()


def create_app(services: Services) -> Starlette:
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/v1/agreements", list_agreements, methods=["GET"]),
        Route("/v1/agreements/{agreement_id}/extract", extract, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={GatewayError: gateway_error, HTTPException: http_error, Exception: internal_error},
        lifespan=_lifespan,
    )
    app.state.services = services
    app.add_middleware(RequestContextMiddleware)
    return app
