"""GET /v1/agreements/{id}/risk — re-identification risk of what an agreement releases, on the current data.

For admins, approvers and compliance officers (authz ``agreements.risk_report``) deciding whether an agreement's
transforms are coarse enough. Over the agreement's declared quasi-identifiers (or, when it declares none, its
released quasi-identifiers as ``policies.disclosure`` counts them; for an aggregate agreement, its dimensions of
class ``quasi_identifier``), transformed exactly as a release would transform them, within the agreement's row
scope. Journalist risk needs a population: the whole registry dataset (no row scope) stands in for it, and the
report says so. The report holds counts and ratios only. The computation lives in :mod:`gateway.agreements.risk`,
where the approval check uses it too; ``assessment`` compares it with the catalog's threshold as approval would.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.agreements.risk import assess, compute_risk, risk_quasi_identifiers
from gateway.errors import NotFoundError
from gateway.web.authz import require
from gateway.web.models.releases import RiskReport
from gateway.web.openapi.parts import AGREEMENT_ID, RELEASE_PROBLEMS, json_response, problem_responses
from gateway.web.routes.common import authenticate, services
from policies.errors import shown_name

__all__ = ["OPENAPI", "agreement_risk", "compute_risk", "risk_quasi_identifiers"]


async def agreement_risk(request: Request) -> Response:
    principal = await authenticate(request)
    require(principal, "agreements.risk_report")  # the dashboard's risk page asks the same table
    found = services(request)
    agreement_id = request.path_params["agreement_id"]
    agreement = found.agreements.get(agreement_id)
    if agreement is None:
        raise NotFoundError(f"there is no agreement with id {shown_name(agreement_id)}; GET /v1/agreements lists them")
    report = await anyio.to_thread.run_sync(
        lambda: compute_risk(
            found.connector, found.keyring, agreement, today=found.today(), batch_rows=max(found.batch_rows, 1000)
        )
    )
    report["assessment"] = assess(agreement, report).describe()
    return JSONResponse(report)


OPENAPI = {
    "/v1/agreements/{agreement_id}/risk": {
        "get": {
            "summary": "Re-identification risk of the agreement on the current data (admin, approver, compliance)",
            "parameters": [AGREEMENT_ID],
            "responses": {
                "200": json_response("Records, classes, prosecutor/journalist/marketer risk", RiskReport),
                **problem_responses(RELEASE_PROBLEMS, 401, 403, 404, 502, 504),
            },
        }
    }
}
