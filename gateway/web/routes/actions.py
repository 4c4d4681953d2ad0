"""Dual control over HTTP: request an action, list them, confirm one as a second person.

    POST /v1/admin/actions               {"action", "agreement_id"?, "reason"?} -> 202, pending (admin)
    GET  /v1/admin/actions               every request and its state (compliance, admin, approver)
    POST /v1/admin/actions/{id}/confirm  a second, distinct principal confirms; the action runs (admin, approver)

``POST /v1/admin/agreements/{id}/state`` with ``revoked`` or ``active`` makes the same request (202).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.agreements.actions import DualControl, describe
from gateway.auth import Principal
from gateway.errors import MalformedRequestError, NotImplementedByGatewayError
from gateway.services import Services
from gateway.web.authz import require
from gateway.web.models.actions import (
    ActionRequest,
    PendingActionConfirmed,
    PendingActionList,
    PendingActionRequested,
)
from gateway.web.models.base import parse_body
from gateway.web.openapi.parts import LIFECYCLE_PROBLEMS, json_body, json_response, path_parameter, problem_responses
from gateway.web.routes.common import authenticate, read_json, services

__all__ = ["OPENAPI", "confirm_action", "dual_control", "list_actions", "request_action", "requested"]


def dual_control(found: Services) -> DualControl:
    if found.database is None:
        raise NotImplementedByGatewayError("dual control keeps its requests in the gateway database; there is none")
    return DualControl(found.database, found.log, found.lifecycle, clock=found.clock)


async def requested(
    found: Services, principal: Principal, action: str, target: str | None, reason: str | None
) -> Response:
    """Record the request (202): nothing happens until a second person confirms it."""
    control = dual_control(found)
    pending = await anyio.to_thread.run_sync(
        lambda: control.request(action, by=principal, target=target, reason=reason)
    )
    body = {**describe(pending), "next": f"POST /v1/admin/actions/{pending.id}/confirm by a second person"}
    return JSONResponse(body, status_code=202)


async def request_action(request: Request) -> Response:
    """POST /v1/admin/actions — request an action under dual control (admin)."""
    principal = await authenticate(request)
    require(principal, "actions.request")
    found = services(request)
    body = parse_body(
        ActionRequest,
        await read_json(request, found.max_body_bytes),
        hint='the body is {"action": "...", "agreement_id": "...", "reason": "..."}',
        error=MalformedRequestError,
    )
    return await requested(found, principal, body.action, body.agreement_id, body.reason)


async def list_actions(request: Request) -> Response:
    """GET /v1/admin/actions — requests under dual control, newest first (oversight roles)."""
    principal = await authenticate(request)
    require(principal, "actions.read")
    control = dual_control(services(request))
    items = await anyio.to_thread.run_sync(control.list)
    now = control.now()
    return JSONResponse({"actions": [describe(a, now) for a in items]})


async def confirm_action(request: Request) -> Response:
    """POST /v1/admin/actions/{id}/confirm — a second person confirms; the action runs (master-key rotation: the
    operator runs it next with ``gateway keys rotate-master --action ID``)."""
    principal = await authenticate(request)
    require(principal, "actions.confirm")
    control = dual_control(services(request))
    action_id = request.path_params["action_id"]
    done, changed = await anyio.to_thread.run_sync(lambda: control.confirm(action_id, by=principal))
    body: dict[str, Any] = describe(done)
    if changed is not None:
        body["agreement"] = changed.describe(with_text=False)
    if done.action == "keys.rotate_master":
        body["next"] = f"the operator runs: gateway keys rotate-master --action {done.id}"
    return JSONResponse(body)


_ACTION_ID = path_parameter("action_id", "^[0-9a-f]{32}$")


def _problems(*codes: int) -> dict[str, Any]:
    return problem_responses(LIFECYCLE_PROBLEMS, *codes)


OPENAPI = {
    "/v1/admin/actions": {
        "get": {
            "summary": "Actions under dual control and their states (compliance, admin, approver)",
            "responses": {"200": json_response("Actions, newest first", PendingActionList), **_problems(401, 403, 501)},
        },
        "post": {
            "summary": "Request an action under dual control (admin): revoking an agreement (destroys its keys), "
            "resuming a suspended one, rotating the master key; it runs only once a second person confirms it",
            "requestBody": json_body(ActionRequest),
            "responses": {
                "202": json_response("The request, pending a second person's confirmation", PendingActionRequested),
                **_problems(400, 401, 403, 404, 409, 413, 415, 422, 501, 503),
            },
        },
    },
    "/v1/admin/actions/{action_id}/confirm": {
        "post": {
            "summary": "Confirm a requested action as a second, distinct person (admin, approver; the rule per action "
            "in confirm_roles); it runs at once, except a master-key rotation, which the operator runs",
            "parameters": [_ACTION_ID],
            "responses": {
                "200": json_response(
                    "The action, executed (or confirmed, for a master-key rotation)", PendingActionConfirmed
                ),
                **_problems(401, 403, 404, 409, 501, 503),
            },
        }
    },
}
