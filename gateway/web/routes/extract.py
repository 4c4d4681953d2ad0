"""POST /v1/agreements/{id}/extract — records under the agreement, transformed, streamed as NDJSON or CSV."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import ValidationError
from gateway.release import release_rows
from gateway.web.limits import HeldResponse, extract_slots
from gateway.web.models.releases import ExtractRequest
from gateway.web.openapi.parts import (
    AGREEMENT_ID,
    DISCLOSURE_ID_HEADER,
    EGRESS_409,
    RELEASE_PROBLEMS,
    json_body,
    problem_responses,
)
from gateway.web.routes.common import authenticate, read_json, resolve_agreement, services
from gateway.web.routes.release import requester_of, to_response
from policies import RequestError, parse_extract_request, plan_extract

__all__ = ["OPENAPI", "extract"]


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
    # At most max_concurrent_extracts per principal (429 past it), held until the response is over.
    release_slot = extract_slots(request).acquire(principal.name)
    try:
        response = to_response(await release_rows(found, requester, agreement, plan, operation="extract"))
    except BaseException:
        release_slot()
        raise
    return HeldResponse(response, release_slot)


OPENAPI = {
    "/v1/agreements/{agreement_id}/extract": {
        "post": {
            "summary": "Extract records under the agreement, transformed by its field rules (streamed)",
            "parameters": [AGREEMENT_ID],
            "requestBody": json_body(ExtractRequest, required=False),
            "responses": {
                "200": {
                    "description": "Streamed NDJSON or CSV; X-Disclosure-Id names the log entry",
                    "headers": DISCLOSURE_ID_HEADER,
                    "content": {"application/x-ndjson": {}, "text/csv": {}},
                },
                **problem_responses(
                    RELEASE_PROBLEMS,
                    400,
                    401,
                    403,
                    404,
                    409,
                    413,
                    415,
                    422,
                    429,
                    501,
                    502,
                    503,
                    504,
                    t409=EGRESS_409,
                    t429="A quota of the agreement is reached (rate-limited), or this key already runs "
                    "max_concurrent_extracts extracts (too-many-concurrent-extracts); Retry-After says when to retry",
                ),
            },
        }
    }
}
