"""Agreements as their parties and overseers see them."""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.web.models.releases import AgreementList
from gateway.web.openapi.parts import RELEASE_PROBLEMS, json_response, problem_responses
from gateway.web.routes.common import OVERSIGHT_ROLES, authenticate, services
from gateway.web.routes.describe import describe_agreement

__all__ = ["OPENAPI", "list_agreements"]


async def list_agreements(request: Request) -> Response:
    principal = await authenticate(request)
    found = services(request)
    today = found.today()
    oversight = bool(principal.roles & OVERSIGHT_ROLES)
    visible = [
        (agreement, agreement.is_party(principal.name))
        for agreement in sorted(found.agreements.values(), key=lambda a: a.id)
        if agreement.is_party(principal.name) or oversight
    ]

    def describe_all() -> list[dict[str, object]]:  # a worker thread: the DP budgets are a database read
        return [describe_agreement(found, a, party=party, today=today) for a, party in visible]

    return JSONResponse({"agreements": await anyio.to_thread.run_sync(describe_all)})


OPENAPI = {
    "/v1/agreements": {
        "get": {
            "summary": "Agreements the caller may use (party) or oversee (compliance, admin, approver)",
            "responses": {
                "200": json_response(
                    "Agreements with their effective field rules and what a request under each may ask: fields "
                    "with types, filters with operators and granularity, disclosure controls, aggregate rules, "
                    "formats and limits",
                    AgreementList,
                ),
                **problem_responses(RELEASE_PROBLEMS, 401),
            },
        }
    }
}
