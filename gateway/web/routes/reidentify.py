"""Re-identification under dual control over HTTP (see ``gateway.controls.reidentify`` for how reversal works).

POST /v1/agreements/{id}/reidentify            party: ``{"field", "tokens": [...], "reason"}`` → 202, pending request
POST /v1/admin/reidentifications/{rid}/approve approver (not the requester); the second distinct approval approves it
GET  /v1/admin/reidentifications               approver, admin, compliance: requests (``?state=pending``)
GET  /v1/reidentifications/{rid}               the requester: the state; once approved, the ids (once, logged)

Every step is a log entry (``reidentification.requested``, ``reidentification.approved``); the answer is a disclosure
(operation ``reidentify``) indexed by the subjects it names.
"""

from __future__ import annotations

import hashlib
import json

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.agreements.lifecycle import LifecycleConflictError
from gateway.auth import Principal
from gateway.controls.reidentify import (
    APPROVALS_NEEDED,
    APPROVED,
    COMPLETED,
    MAX_REASON,
    PENDING,
    ReidentificationRequest,
    ReidentificationStore,
    new_request,
    parse_tokens,
    reverse_tokens,
)
from gateway.errors import (
    AuditUnavailableError,
    ConflictError,
    ForbiddenError,
    GatewayError,
    MalformedRequestError,
    NotFoundError,
    ValidationError,
)
from gateway.release import AgreementTerms, Produced, buffered_disclosure
from gateway.services import Services
from gateway.web.models.base import parse_body, ref
from gateway.web.models.lifecycle import (
    Reidentification,
    ReidentificationAnswer,
    ReidentificationList,
    ReidentifyRequest,
)
from gateway.web.openapi.parts import (
    AGREEMENT_ID,
    LIFECYCLE_PROBLEMS,
    json_body,
    json_response,
    path_parameter,
    problem_responses,
)
from gateway.web.routes.admin_agreements import lifecycle_of
from gateway.web.routes.common import (
    OVERSIGHT_ROLES,
    authenticate,
    new_id,
    read_json,
    require_role,
    resolve_agreement,
    services,
)
from gateway.web.routes.release import requester_of, to_response
from keys import KeyDestroyedError

__all__ = [
    "OPENAPI",
    "approve_reidentification",
    "get_reidentification",
    "list_reidentifications",
    "request_reidentification",
]

_MIN_REASON = 10


class KeysDestroyedError(GatewayError):
    status = 410
    code = "keys-destroyed"
    title = "The keys of these tokens were destroyed"


class AlreadyFetchedError(GatewayError):
    status = 410
    code = "already-fetched"
    title = "The answer was already fetched"


def _store(found: Services) -> ReidentificationStore:
    lifecycle_of(found)  # re-identification is part of the lifecycle API: the same "files only" refusal
    if found.database is None:
        raise AuditUnavailableError("re-identification requests are kept in the gateway database, and it has none")
    return ReidentificationStore(found.database)


def _reason_digest(reason: str) -> str:
    return hashlib.sha256(reason.encode("utf-8")).hexdigest()


async def request_reidentification(request: Request) -> Response:
    principal = await authenticate(request)
    found = services(request)
    store = _store(found)
    agreement = resolve_agreement(found, principal, request.path_params["agreement_id"])
    spec = agreement.reidentification
    if not spec.allowed:
        raise ForbiddenError(
            f"agreement {agreement.id!r} does not allow re-identification", code="reidentification-not-allowed"
        )
    body = parse_body(
        ReidentifyRequest,
        await read_json(request, found.max_body_bytes + 64 * 1024),
        hint='the body is {"field": "<tokenized field>", "tokens": [...], "reason": "..."}',
        error=MalformedRequestError,
    )
    # The envelope is the model's; the field, the reason and the tokens are checked here, each with its own code.
    field, reason = body.field, body.reason
    if not isinstance(field, str) or field not in spec.fields:
        raise ValidationError(
            f"re-identification under {agreement.id!r} is allowed for {', '.join(spec.fields)} only",
            code="field-not-reidentifiable",
        )
    if not isinstance(reason, str) or not _MIN_REASON <= len(reason.strip()) <= MAX_REASON:
        raise ValidationError(
            f"give a reason of {_MIN_REASON}-{MAX_REASON} characters: approvers decide on it", code="reason-required"
        )
    try:
        tokens = parse_tokens(body.tokens)
    except ValueError as exc:
        raise ValidationError(str(exc), code="invalid-tokens") from exc
    item = new_request(new_id(), agreement, field, tokens, reason.strip(), principal.name, found.clock())
    await anyio.to_thread.run_sync(store.create, item)
    entry = {
        "type": "reidentification.requested",
        "request_id": item.id,
        "agreement": {"id": agreement.id, "version": agreement.version, "digest": agreement.digest},
        "field": field,
        "tokens": item.token_count,
        "tokens_sha256": item.tokens_sha256,
        # The reason stays in the gateway database; the log commits to it without holding free text.
        "reason_sha256": _reason_digest(item.reason),
        "requester": principal.name,
    }
    try:
        await anyio.to_thread.run_sync(found.log.append_event, entry)
    except Exception:
        await anyio.to_thread.run_sync(store.delete, item.id)
        raise
    return JSONResponse(item.describe(), status_code=202, headers={"Location": f"/v1/reidentifications/{item.id}"})


def _load(store: ReidentificationStore, request_id: str) -> ReidentificationRequest:
    if not request_id.isalnum() or len(request_id) > 64:
        raise NotFoundError("no such re-identification request")
    item = store.get(request_id)
    if item is None:
        raise NotFoundError("no such re-identification request")
    return item


async def approve_reidentification(request: Request) -> Response:
    principal = await authenticate(request)
    require_role(principal, "approver")
    found = services(request)
    store = _store(found)
    item = await anyio.to_thread.run_sync(_load, store, request.path_params["request_id"])
    if principal.name == item.requester:
        raise ForbiddenError("you made this request; two other approvers must approve it", code="four-eyes")
    if item.state != PENDING:
        raise LifecycleConflictError(f"the request is {item.state}; only a pending request can be approved")
    now = found.clock()
    count = await anyio.to_thread.run_sync(lambda: store.add_approval(item.id, principal.name, now))
    if count is None:
        raise LifecycleConflictError(
            "you already approved this request; a second, different approver must approve it", code="already-approved"
        )
    if count == 0:
        raise LifecycleConflictError("the request changed meanwhile; read it again")
    entry = {
        "type": "reidentification.approved",
        "request_id": item.id,
        "agreement": {"id": item.agreement_id, "version": item.agreement_version},
        "approver": principal.name,
        "approvals": count,
        "approvals_needed": APPROVALS_NEEDED,
    }
    try:
        await anyio.to_thread.run_sync(found.log.append_event, entry)
    except Exception:
        await anyio.to_thread.run_sync(store.remove_approval, item.id, principal.name)
        raise
    updated = await anyio.to_thread.run_sync(_load, store, item.id)
    return JSONResponse(updated.describe())


async def list_reidentifications(request: Request) -> Response:
    principal = await authenticate(request)
    require_role(principal, *sorted(OVERSIGHT_ROLES))
    store = _store(services(request))
    state = request.query_params.get("state")
    if state is not None and state not in (PENDING, APPROVED, COMPLETED):
        raise ValidationError("state is pending, approved or completed")
    items = await anyio.to_thread.run_sync(lambda: store.find(state=state))
    return JSONResponse({"reidentifications": [i.describe() for i in items]})


async def get_reidentification(request: Request) -> Response:
    principal = await authenticate(request)
    found = services(request)
    store = _store(found)
    item = await anyio.to_thread.run_sync(_load, store, request.path_params["request_id"])
    if principal.name != item.requester:
        if principal.roles & OVERSIGHT_ROLES:
            return JSONResponse(item.describe())  # the state, never the answer
        raise NotFoundError("no such re-identification request")
    if item.state == PENDING:
        return JSONResponse(item.describe())
    if item.state == COMPLETED:
        raise AlreadyFetchedError(
            f"the answer was fetched already (disclosure {item.disclosure_id}); make a new request if needed"
        )
    return await _answer(request, found, principal, store, item)


async def _answer(
    request: Request, found: Services, principal: Principal, store: ReidentificationStore, item: ReidentificationRequest
) -> Response:
    # The agreement must still be in force, with the party, and still allow reversal of this field.
    agreement = resolve_agreement(found, principal, item.agreement_id)
    if not agreement.reidentification.allowed or item.field not in agreement.reidentification.fields:
        raise ForbiddenError(
            f"agreement {agreement.id!r} no longer allows re-identification of {item.field!r}",
            code="reidentification-not-allowed",
        )
    logged = await anyio.to_thread.run_sync(store.logged_approvers, item.id)
    if len(logged - {item.requester}) < APPROVALS_NEEDED:
        # The tables say approved, the signed log does not: someone wrote the state or the approvals by hand.
        raise ConflictError(
            f"the disclosure log records {len(logged - {item.requester})} of the {APPROVALS_NEEDED} approvals this "
            "request needs; nothing is reversed (check the database: run `gateway log verify`)",
            code="second-person-required",
        )
    if not await anyio.to_thread.run_sync(store.claim, item.id):
        raise AlreadyFetchedError("the answer was fetched already; make a new request if needed")

    def produce(_session: object) -> Produced:
        reversal = reverse_tokens(
            agreement,
            item.field,
            list(item.tokens),
            ring=found.keyring,
            connector=found.connector,
            today=found.today(),
            batch_rows=found.batch_rows,
        )
        body = {
            "id": item.id,
            "agreement_id": agreement.id,
            "field": item.field,
            "found": {t: v if isinstance(v, str | int) else str(v) for t, v in reversal.found.items()},
            "not_found": reversal.not_found,
            "approvals": list(item.approvers),
            "state": COMPLETED,
        }
        return Produced(json.dumps(body, ensure_ascii=False).encode("utf-8"), len(reversal.found), reversal.subjects)

    plan = {
        "dataset": agreement.dataset.name,
        "fields": [{"name": item.field, "op": "reidentify"}],
        "request_id": item.id,
        "tokens": item.token_count,
        "tokens_sha256": item.tokens_sha256,
        "approvers": list(item.approvers),
        "filters": [f.describe() for f in agreement.row_scope],
    }
    try:
        disclosed = await buffered_disclosure(
            found,
            requester_of(request, principal),
            AgreementTerms.of(agreement),
            operation="reidentify",
            plan=plan,
            produce=produce,
        )
    except Exception as exc:
        await anyio.to_thread.run_sync(store.unclaim, item.id)  # nothing was sent: it may be fetched again
        if isinstance(exc, KeyDestroyedError):
            raise KeysDestroyedError(
                "the keys these tokens were made with were destroyed (the agreement ended): nobody can reverse them"
            ) from exc
        raise
    await anyio.to_thread.run_sync(store.complete, item.id, disclosed.disclosure_id)
    return to_response(disclosed)


_REQUEST = path_parameter("request_id", "^[A-Za-z0-9]{1,64}$")

OPENAPI = {
    "/v1/agreements/{agreement_id}/reidentify": {
        "post": {
            "summary": "Ask for the ids behind tokens (party; the agreement must allow it; two approvers decide)",
            "parameters": [AGREEMENT_ID],
            "requestBody": json_body(ReidentifyRequest),
            "responses": {
                "202": json_response(
                    "Pending request (Location names it)",
                    Reidentification,
                    headers={"Location": {"schema": {"type": "string"}}},
                ),
                **problem_responses(LIFECYCLE_PROBLEMS, 400, 401, 403, 404, 413, 415, 422, 501, 503),
            },
        }
    },
    "/v1/reidentifications/{request_id}": {
        "get": {
            "summary": "The request's state; to its requester once approved, the ids asked for (once; logged as "
            "a disclosure, operation reidentify)",
            "parameters": [_REQUEST],
            "responses": {
                "200": json_response(
                    "The request's state, or (to its requester, once) the ids found",
                    {"anyOf": [ref(Reidentification), ref(ReidentificationAnswer)]},
                ),
                **problem_responses(LIFECYCLE_PROBLEMS, 401, 403, 404, 409, 410, 501, 502, 503, 504),
            },
        }
    },
    "/v1/admin/reidentifications": {
        "get": {
            "summary": "Re-identification requests (approver, admin, compliance); ?state=pending",
            "responses": {
                "200": json_response("Requests", ReidentificationList),
                **problem_responses(LIFECYCLE_PROBLEMS, 401, 403, 422, 501),
            },
        }
    },
    "/v1/admin/reidentifications/{request_id}/approve": {
        "post": {
            "summary": "Approve a re-identification request (approver, not the requester; two distinct needed)",
            "parameters": [_REQUEST],
            "responses": {
                "200": json_response("The request with its approvals", Reidentification),
                **problem_responses(LIFECYCLE_PROBLEMS, 401, 403, 404, 409, 501, 503),
            },
        }
    },
}
