"""Agreements as their parties and overseers see them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.web.models.releases import AgreementList
from gateway.web.openapi.parts import RELEASE_PROBLEMS, json_response, problem_responses
from gateway.web.routes.common import OVERSIGHT_ROLES, authenticate, services

__all__ = ["OPENAPI", "list_agreements"]


async def list_agreements(request: Request) -> Response:
    principal = await authenticate(request)
    found = services(request)
    today = found.today()
    oversight = bool(principal.roles & OVERSIGHT_ROLES)
    items = []
    for agreement in sorted(found.agreements.values(), key=lambda a: a.id):
        if agreement.is_party(principal.name) or oversight:
            item = agreement.describe()
            item["role"] = "party" if agreement.is_party(principal.name) else "oversight"
            item["valid_today"] = agreement.validity_problem(today) is None
            items.append(item)
    return JSONResponse({"agreements": items})


OPENAPI = {
    "/v1/agreements": {
        "get": {
            "summary": "Agreements the caller may use (party) or oversee (compliance, admin, approver)",
            "responses": {
                "200": json_response("Agreements with their effective field rules", AgreementList),
                **problem_responses(RELEASE_PROBLEMS, 401),
            },
        }
    }
}
