"""Agreements as their parties and overseers see them: the list, and one agreement (JSON, or ODRL 2.2 JSON-LD)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.agreements.store import inactive_agreement
from gateway.auth import Principal
from gateway.errors import ForbiddenError, NotFoundError
from gateway.web.models.releases import AgreementList, AgreementSummary
from gateway.web.negotiation import negotiate
from gateway.web.openapi.parts import AGREEMENT_ID, RELEASE_PROBLEMS, json_response, problem_responses
from gateway.web.routes.common import OVERSIGHT_ROLES, authenticate, services
from policies import Agreement
from policies.errors import shown_name
from policies.odrl import to_odrl

__all__ = ["JSON_LD", "OPENAPI", "describe_agreement", "get_agreement", "list_agreements"]

JSON_LD = "application/ld+json"
_OFFERED = ("application/json", JSON_LD)


def _may_see(agreement: Agreement, principal: Principal) -> bool:
    return agreement.is_party(principal.name) or bool(principal.roles & OVERSIGHT_ROLES)


def describe_agreement(agreement: Agreement, principal: Principal, today: dt.date) -> dict[str, Any]:
    """One agreement as the listing shows it to ``principal`` (a party or an overseer: the caller checks which)."""
    item = agreement.describe()
    item["role"] = "party" if agreement.is_party(principal.name) else "oversight"
    item["valid_today"] = agreement.validity_problem(today) is None
    return item


async def list_agreements(request: Request) -> Response:
    principal = await authenticate(request)
    found = services(request)
    today = found.today()
    items = [
        describe_agreement(agreement, principal, today)
        for agreement in sorted(found.agreements.values(), key=lambda a: a.id)
        if _may_see(agreement, principal)
    ]
    return JSONResponse({"agreements": items})


async def get_agreement(request: Request) -> Response:
    """GET /v1/agreements/{id} — the listing's entry for one agreement; ``Accept: application/ld+json`` gives it as an
    ODRL 2.2 policy. Whoever the listing does not show it to gets 404, the answer for an unknown id (403 would
    confirm that it exists); a party of a suspended, revoked or expired agreement is told so, as by the operations."""
    principal = await authenticate(request)
    found = services(request)
    agreement_id = request.path_params["agreement_id"]
    # Negotiate before looking: a 406 says nothing about the agreement, for every id alike.
    media = negotiate(request.headers.get("accept"), _OFFERED)
    agreement = found.agreements.get(agreement_id)
    if agreement is None or not _may_see(agreement, principal):
        inactive = inactive_agreement(found.agreements, agreement_id) if agreement is None else None
        if inactive is not None and principal.name in inactive.parties:
            raise ForbiddenError(f"agreement {agreement_id!r} is {inactive.state}", code=f"agreement-{inactive.state}")
        raise NotFoundError(f"there is no agreement with id {shown_name(agreement_id)}; GET /v1/agreements lists yours")
    headers = {"Vary": "Accept"}
    if media == JSON_LD:
        return JSONResponse(to_odrl(agreement), media_type=JSON_LD, headers=headers)
    return JSONResponse(describe_agreement(agreement, principal, found.today()), headers=headers)


_ODRL_SCHEMA = {
    "type": "object",
    "description": "An ODRL 2.2 odrl:Agreement in JSON-LD (docs/agreements.md, section ODRL export); an export: the "
    "gateway enforces the agreement itself",
    "required": ["@context", "@type", "uid", "assigner", "assignee", "permission"],
    "properties": {
        "@context": {"type": "array"},
        "@type": {"const": "Agreement"},
        "uid": {"type": "string"},
        "assigner": {"type": "string"},
        "assignee": {"type": "array", "items": {"type": "string"}},
        "permission": {"type": "array", "items": {"type": "object"}},
        "prohibition": {"type": "array", "items": {"type": "object"}},
    },
}

_ONE = json_response(
    "The agreement as GET /v1/agreements lists it (application/json), or as an ODRL 2.2 policy (application/ld+json)",
    AgreementSummary,
    headers={"Vary": {"schema": {"type": "string"}}},
)
_ONE["content"][JSON_LD] = {"schema": _ODRL_SCHEMA}

OPENAPI = {
    "/v1/agreements": {
        "get": {
            "summary": "Agreements the caller may use (party) or oversee (compliance, admin, approver)",
            "responses": {
                "200": json_response("Agreements with their effective field rules", AgreementList),
                **problem_responses(RELEASE_PROBLEMS, 401),
            },
        }
    },
    "/v1/agreements/{agreement_id}": {
        "get": {
            "summary": "One agreement the caller may use or oversee; Accept: application/ld+json for ODRL 2.2",
            "parameters": [AGREEMENT_ID],
            "responses": {
                "200": _ONE,
                **problem_responses(
                    {**RELEASE_PROBLEMS, 406: "Accept names neither application/json nor application/ld+json"},
                    401,
                    403,
                    404,
                    406,
                    t403="A party's agreement is suspended, revoked or expired (agreement-suspended, ...)",
                    t404="No such agreement, or not one the caller is a party to or oversees (the same answer)",
                ),
            },
        }
    },
}
