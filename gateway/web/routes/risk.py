"""GET /v1/agreements/{id}/risk — re-identification risk of what an agreement releases, on the current data.

For admins and approvers deciding whether an agreement's transforms are coarse enough. Over the agreement's declared
quasi-identifiers (or, when it declares none, its released columns of class ``quasi_identifier``; for an aggregate
agreement, its dimensions of that class), transformed exactly as a release would transform them, within the
agreement's row scope. Journalist risk needs a population: the whole registry dataset (no row scope) stands in for it,
and the report says so. The report holds counts and ratios only. The same computation backs
``gateway agreements risk ID``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.connectors import Connector
from gateway.errors import NotFoundError
from gateway.keysource import AgreementKeySource
from gateway.web.models.releases import RiskReport
from gateway.web.openapi.parts import AGREEMENT_ID, RELEASE_PROBLEMS, json_response, problem_responses
from gateway.web.routes.common import authenticate, require_role, services
from keys import KeyRing
from policies import Agreement, ColumnClass, ReleasePlan, Rule, describe_rule
from policies.errors import shown_name
from transforms.risk import EquivalenceClasses, classes_view, k_anonymity_verdict, risk_report

__all__ = ["OPENAPI", "agreement_risk", "compute_risk", "risk_quasi_identifiers"]

Row = tuple[Any, ...]


def risk_quasi_identifiers(agreement: Agreement) -> tuple[dict[str, Rule], str]:
    """The quasi-identifiers to assess, with their rules, and where they come from."""
    columns = agreement.dataset.columns
    if agreement.k_anonymity is not None:
        return {q: agreement.fields[q] for q in agreement.k_anonymity.quasi_identifiers}, "k_anonymity"
    released = {n: r for n, r in agreement.released().items() if columns[n].cls is ColumnClass.QUASI_IDENTIFIER}
    if released:
        return released, "released quasi_identifier columns"
    if agreement.aggregate is not None:
        dims = {
            n: r for n, r in agreement.aggregate.dimensions.items() if columns[n].cls is ColumnClass.QUASI_IDENTIFIER
        }
        if dims:
            return dims, "aggregate dimensions of class quasi_identifier"
    return {}, "none (every record is in one class)"


def _count(batches: Iterator[list[Row]], view_rows: Any) -> EquivalenceClasses:
    classes = EquivalenceClasses()
    try:
        for batch in batches:
            classes.add(view_rows(batch))
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    return classes


def compute_risk(
    connector: Connector, keyring: KeyRing, agreement: Agreement, *, today: dt.date, batch_rows: int = 5000
) -> dict[str, Any]:
    dataset = agreement.dataset
    qis, source = risk_quasi_identifiers(agreement)
    base = ReleasePlan(
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_digest=agreement.digest,
        dataset=dataset,
        projection=(dataset.subject_key,),
        outputs=(),
        filters=agreement.row_scope,
        limit=None,
        format="json",
        reference_date=today,
    )
    view = classes_view(base, qis, AgreementKeySource(keyring, agreement.id))
    sample = _count(connector.stream(view.plan, batch_rows=batch_rows), view.classes.rows)
    population = _count(
        connector.stream(dataclasses.replace(view.plan, filters=()), batch_rows=batch_rows), view.classes.rows
    )
    report: dict[str, Any] = {
        "agreement": {"id": agreement.id, "version": agreement.version, "digest": agreement.digest},
        "dataset": dataset.name,
        "quasi_identifiers": [{"name": n, **describe_rule(r)} for n, r in qis.items()],
        "quasi_identifiers_from": source,
        "row_scope": [f.describe() for f in agreement.row_scope],
        "computed_on": today.isoformat(),
        **risk_report(sample.sizes, population.sizes).to_json(),
        "method": "El Emam's prosecutor, journalist and marketer risk, as reported by ARX; see "
        "docs/disclosure-control.md",
    }
    spec = agreement.k_anonymity
    if spec is not None:
        # What an extract would release after k-anonymity: only the classes it keeps (l-diversity not re-checked).
        verdict = k_anonymity_verdict(sample, spec.k, None, spec.max_suppression)
        kept = {key: size for key, size in sample.sizes.items() if key in verdict.allowed}
        report["after_k_anonymity"] = {
            "k": spec.k,
            "suppressed_records": verdict.suppressed_records,
            **risk_report(kept, population.sizes).to_json(),
        }
    return report


async def agreement_risk(request: Request) -> Response:
    principal = await authenticate(request)
    require_role(principal, "admin", "approver")
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
    return JSONResponse(report)


OPENAPI = {
    "/v1/agreements/{agreement_id}/risk": {
        "get": {
            "summary": "Re-identification risk of the agreement on the current data (admin, approver)",
            "parameters": [AGREEMENT_ID],
            "responses": {
                "200": json_response("Records, classes, prosecutor/journalist/marketer risk", RiskReport),
                **problem_responses(RELEASE_PROBLEMS, 401, 403, 404, 502, 504),
            },
        }
    }
}
