"""``POST /v1/subjects/disclosures/proof``: the accounting of disclosures for one subject, with proofs.

Same body, role and answer set as ``POST /v1/subjects/disclosures`` (authorization action ``subjects.accounting``);
each disclosure comes with its signed entries and the subject's membership in its committed subject set
(gateway.audit.accounting_proof), verifiable offline with ``gateway receipt verify FILE --public-key log.pub``.
A separate path, not a flag on the accounting: the accounting's body stays what its clients read, and a proof costs
a read of each listed disclosure's subject index.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.audit.accounting_build import build_accounting_proof
from gateway.errors import AuditUnavailableError
from gateway.web.authz import require
from gateway.web.models.accounting_proof import AccountingProof
from gateway.web.models.base import parse_body
from gateway.web.models.compliance import SubjectQuery
from gateway.web.openapi.parts import COMPLIANCE_PROBLEMS, json_body, json_response, problem_responses
from gateway.web.routes.common import authenticate, read_json, services
from gateway.web.routes.compliance import reader, subject_hash

__all__ = ["OPENAPI", "subject_disclosures_proof"]


async def subject_disclosures_proof(request: Request) -> Response:
    principal = await authenticate(request)
    require(principal, "subjects.accounting")
    found = services(request)
    query = parse_body(
        SubjectQuery,
        await read_json(request, found.max_body_bytes),
        hint='the body must be {"subject_id": "<the child\'s registry id>"} (1 to 64 characters)',
    )
    log_reader, engine = reader(found), found.database
    if engine is None:
        raise AuditUnavailableError("this gateway's disclosure log cannot be queried")
    hashed = subject_hash(found, query.subject_id)

    def build() -> dict[str, Any]:
        return build_accounting_proof(found.log, log_reader, engine, hashed)

    return JSONResponse(await anyio.to_thread.run_sync(build))


OPENAPI = {
    "/v1/subjects/disclosures/proof": {
        "post": {
            "summary": "Accounting of disclosures for one subject with proofs: signed entries, inclusion in a signed "
            "checkpoint, membership in each disclosure's committed subject set (compliance)",
            "description": "Verify offline with `gateway receipt verify FILE --public-key log.pub`; see "
            "docs/disclosure-log.md (Accounting with proof)",
            "requestBody": json_body(SubjectQuery),
            "responses": {
                "200": json_response("The disclosures, oldest first, with proofs", AccountingProof),
                **problem_responses(
                    {**COMPLIANCE_PROBLEMS, 409: "A table disagrees with the signed entries (log-projection-mismatch)"},
                    400,
                    401,
                    403,
                    409,
                    413,
                    415,
                    422,
                    503,
                ),
            },
        }
    }
}
