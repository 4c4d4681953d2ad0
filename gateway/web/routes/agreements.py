"""Agreements as their parties and overseers see them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.web.routes.common import OVERSIGHT_ROLES, authenticate, services

__all__ = ["list_agreements"]


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
