"""Compliance API: the disclosure log as compliance officers and requesters read it.

Nothing here edits or deletes an entry. A requester may read its own disclosures and receipts; an id that exists but
belongs to someone else answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.audit.export import export_stream
from gateway.audit.reader import DisclosureQuery, LogReader, accounting_json, build_receipt, disclosure_json
from gateway.audit.subjects import LogKeys
from gateway.auth import Principal
from gateway.controls.subject_aliases import resolve_subject
from gateway.errors import AuditUnavailableError, NotFoundError, ValidationError
from gateway.services import Services
from gateway.web.authz import require
from gateway.web.models.base import parse_body
from gateway.web.models.compliance import Disclosure as DisclosureBody
from gateway.web.models.compliance import DisclosurePage, Receipt, SubjectAccounting, SubjectQuery, Totals
from gateway.web.openapi.parts import (
    COMPLIANCE_PROBLEMS,
    json_body,
    json_response,
    path_parameter,
    problem_responses,
    query_parameter,
)
from gateway.web.routes.common import authenticate, read_json, require_role, services
from policies.errors import shown_name

__all__ = [
    "OPENAPI",
    "disclosure",
    "disclosure_totals",
    "export_disclosures",
    "list_disclosures",
    "receipt",
    "subject_disclosures",
    "subject_hash",
]

_STATUSES = frozenset({"started", "completed", "aborted", "failed"})
_MAX_PAGE = 1000


def reader(found: Services) -> LogReader:
    if found.database is None:
        raise AuditUnavailableError("this gateway's disclosure log cannot be queried")
    witnessing = found.witnessing
    if witnessing is None:
        return LogReader(found.database, flush=found.log.flush)
    return LogReader(found.database, flush=found.log.flush, witnesses=witnessing.names, quorum=witnessing.quorum)


def subject_hash(found: Services, subject_id: str) -> bytes:
    return LogKeys.of(found.keyring).subject(subject_id)


def _time(value: str | None, name: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        # In UTC, as stored: SQLite compares the wall time and would ignore another offset. A moment that has no UTC
        # representation (0001-01-01T00:00+01:00) is the caller's error, not an unreachable database.
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        raise ValidationError(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 timestamp") from None


def _cursor(value: str | None) -> int | None:
    if not value:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value.encode() + b"=" * (-len(value) % 4)))
        before = decoded["before"]
        # A log index fits the BIGINT column; a larger one would fail in the driver (500 or 503), not here (422).
        if isinstance(before, int) and not isinstance(before, bool) and 0 <= before < 2**63:
            return before
    except (ValueError, KeyError, TypeError):
        pass
    raise ValidationError("cursor is not one this API returned; start again without it")


def _encode_cursor(before: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": before}).encode()).decode().rstrip("=")


def _query(request: Request, principal: Principal, *, page: int | None = None) -> DisclosureQuery:
    params = request.query_params
    allowed = {"agreement", "principal", "purpose", "status", "since", "until", "cursor", "limit", "format"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValidationError(
            f"unknown query parameter {shown_name(unknown[0])} (allowed: {', '.join(sorted(allowed))})"
        )
    status = params.get("status")
    if status is not None and status not in _STATUSES:
        raise ValidationError(f"status must be one of {', '.join(sorted(_STATUSES))}")
    limit = page or 100
    if "limit" in params and page is None:
        text = params["limit"]
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= _MAX_PAGE:  # "²".isdigit() is True
            raise ValidationError(f"limit must be an integer between 1 and {_MAX_PAGE}")
        limit = int(text)
    who = params.get("principal")
    if "compliance" not in principal.roles:
        # A requester sees only its own disclosures, whatever it asks for.
        who = principal.name
    since, until = _time(params.get("since"), "since"), _time(params.get("until"), "until")
    if since and until and since >= until:
        raise ValidationError("since must be before until")
    return DisclosureQuery(
        agreement=params.get("agreement"),
        principal=who,
        purpose=params.get("purpose"),
        status=status,
        since=since,
        until=until,
        before_seq=_cursor(params.get("cursor")),
        limit=limit,
    )


async def list_disclosures(request: Request) -> Response:
    principal = await authenticate(request)
    require_role(principal, "compliance", "requester")
    query = _query(request, principal)
    rows = await anyio.to_thread.run_sync(reader(services(request)).disclosures, query)
    body: dict[str, Any] = {"disclosures": [disclosure_json(r) for r in rows]}
    body["next_cursor"] = _encode_cursor(rows[-1].start_seq) if len(rows) == query.limit else None
    return JSONResponse(body)


async def export_disclosures(request: Request) -> Response:
    principal = await authenticate(request)
    require(principal, "disclosures.export")
    fmt = request.query_params.get("format", "ndjson")
    if fmt not in ("ndjson", "csv"):
        raise ValidationError("format must be ndjson or csv")
    query = _query(request, principal, page=_MAX_PAGE)
    log_reader = reader(services(request))

    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    return StreamingResponse(
        export_stream(log_reader, query, fmt=fmt, page=_MAX_PAGE),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="disclosures.{fmt}"'},
    )


async def _own_disclosure(request: Request) -> tuple[Principal, Any]:
    principal = await authenticate(request)
    disclosure_id = request.path_params["disclosure_id"]
    if len(disclosure_id) > 64 or not disclosure_id.isalnum():
        raise NotFoundError("no such disclosure")
    row = await anyio.to_thread.run_sync(reader(services(request)).disclosure, disclosure_id)
    if row is None or ("compliance" not in principal.roles and row.principal != principal.name):
        raise NotFoundError("no such disclosure (or not one of yours)")
    return principal, row


async def disclosure(request: Request) -> Response:
    _principal, row = await _own_disclosure(request)
    return JSONResponse(disclosure_json(row))


async def receipt(request: Request) -> Response:
    _principal, row = await _own_disclosure(request)
    found = services(request)
    log_reader = reader(found)

    def build() -> dict[str, Any]:
        built = build_receipt(found.log, log_reader, row)
        if built is None:
            raise AuditUnavailableError("no signed checkpoint covers this entry yet; try again in a few seconds")
        return built

    return JSONResponse(await anyio.to_thread.run_sync(build))


async def disclosure_totals(request: Request) -> Response:
    principal = await authenticate(request)
    require(principal, "disclosures.totals")
    totals = await anyio.to_thread.run_sync(reader(services(request)).totals)
    return JSONResponse({"agreements": totals})


async def subject_disclosures(request: Request) -> Response:
    principal = await authenticate(request)
    require(principal, "subjects.accounting")
    found = services(request)
    query = parse_body(
        SubjectQuery,
        await read_json(request, found.max_body_bytes),
        hint='the body must be {"subject_id": "<the child\'s registry id, national ID or student number>"} '
        "(1 to 64 characters)",
    )
    given = query.subject_id  # stripped

    def lookup() -> list[Any]:
        # The registry key, or the key of the child a declared alias (national ID, student number) names; the
        # alias value is used for this lookup only (gateway.controls.subject_aliases).
        subject_id = resolve_subject(found.catalog, found.connector, given, today=found.today())
        return reader(found).subject_disclosures(subject_hash(found, subject_id))

    rows = await anyio.to_thread.run_sync(lookup)
    # The accounting a family can ask for: date, recipient, what, why, under which agreement and approval.
    items = [accounting_json(row) for row in rows]
    return JSONResponse({"disclosures": items, "count": len(items)})


_FILTERS = [
    query_parameter("agreement", {"type": "string"}, "Only disclosures under this agreement id"),
    query_parameter(
        "principal", {"type": "string"}, "Only disclosures to this principal (compliance; ignored for requesters)"
    ),
    query_parameter("purpose", {"type": "string"}, "Only disclosures for this purpose"),
    query_parameter(
        "status", {"enum": ["started", "completed", "aborted", "failed"]}, "Only disclosures in this state"
    ),
    query_parameter(
        "since", {"type": "string"}, "From this date (YYYY-MM-DD) or ISO 8601 timestamp (UTC when no offset)"
    ),
    query_parameter("until", {"type": "string"}, "Before this date or timestamp; must be after since"),
    query_parameter("cursor", {"type": "string"}, "next_cursor of the previous page"),
]
_DISCLOSURE_ID = path_parameter(
    "disclosure_id",
    "^[0-9a-f]{32}$",
    "As issued in X-Disclosure-Id (32 lowercase hex characters; /v1/disclosures/export and "
    "/v1/disclosures/totals are other operations, not ids)",
)


def _problems(*codes: int, **texts: str) -> dict[str, Any]:
    return problem_responses(COMPLIANCE_PROBLEMS, *codes, **texts)


OPENAPI = {
    "/v1/disclosures": {
        "get": {
            "summary": "Disclosures, newest first (compliance; a requester sees only its own, whatever it asks)",
            "parameters": [
                *_FILTERS,
                query_parameter("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size (default 100)"),
            ],
            "responses": {
                "200": json_response("One page of disclosures", DisclosurePage),
                **_problems(401, 403, 422, 503),
            },
        }
    },
    "/v1/disclosures/export": {
        "get": {
            "summary": "Every disclosure matching the filters, streamed (compliance)",
            "parameters": [
                *_FILTERS,
                query_parameter("format", {"enum": ["ndjson", "csv"], "default": "ndjson"}, "Body format"),
            ],
            "responses": {
                "200": {
                    "description": "NDJSON (one Disclosure per line) or CSV with a header row (cells starting "
                    "with =, +, -, @, tab or CR prefixed with ')",
                    "content": {"application/x-ndjson": {}, "text/csv": {}},
                },
                **_problems(401, 403, 422, 503),
            },
        }
    },
    "/v1/disclosures/totals": {
        "get": {
            "summary": "Per agreement: requests, rows, distinct subjects, last use (compliance)",
            "responses": {"200": json_response("Totals per agreement", Totals), **_problems(401, 403, 503)},
        }
    },
    "/v1/disclosures/{disclosure_id}": {
        "get": {
            "summary": "One disclosure (compliance, or its requester)",
            "parameters": [_DISCLOSURE_ID],
            "responses": {"200": json_response("The disclosure", DisclosureBody), **_problems(401, 404, 503)},
        }
    },
    "/v1/disclosures/{disclosure_id}/receipt": {
        "get": {
            "summary": "A receipt of the disclosure: its log entries, a signed checkpoint, inclusion proofs "
            "(compliance, or its requester)",
            "parameters": [_DISCLOSURE_ID],
            "responses": {
                "200": json_response("The receipt", Receipt),
                **_problems(401, 404, 503, t503="No signed checkpoint covers the entry yet, or log unavailable"),
            },
        }
    },
    "/v1/subjects/disclosures": {
        "post": {
            "summary": "Accounting of disclosures: every disclosure that included one subject (compliance); "
            "subject_id is the registry key or a subject alias the catalog declares (national ID, student number)",
            "requestBody": json_body(SubjectQuery),
            "responses": {
                "200": json_response("The disclosures, oldest first", SubjectAccounting),
                **_problems(
                    400,
                    401,
                    403,
                    409,
                    413,
                    415,
                    422,
                    502,
                    503,
                    504,
                    t409="The identifier names more than one child in the registry (subject-ambiguous)",
                    t502="The registry could not be read to look the alias up",
                    t504="The registry did not answer the alias lookup in time",
                ),
            },
        }
    },
}
