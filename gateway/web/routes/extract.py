"""POST /v1/agreements/{id}/extract — records under the agreement, transformed, streamed as NDJSON or CSV."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import ValidationError
from gateway.release import release_rows
from gateway.web.routes.common import authenticate, read_json, resolve_agreement, services
from gateway.web.routes.release import requester_of, to_response
from policies import RequestError, parse_extract_request, plan_extract

__all__ = ["extract"]


async def extract(request: Request) -> Response:
    principal = await authenticate(request)
    found = services(request)
    agreement = resolve_agreement(found, principal, request.path_params["agreement_id"])
    body = await read_json(request, found.max_body_bytes)
    try:
        parsed = parse_extract_request(body, max_limit=found.max_rows_per_request)
        plan = plan_extract(agreement, parsed, today=found.today())
    except RequestError as exc:
        raise ValidationError(str(exc), code=exc.code) from exc
    requester = requester_of(request, principal)
    return to_response(await release_rows(found, requester, agreement, plan, operation="extract"))
