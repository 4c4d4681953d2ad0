"""POST /v1/agreements/{id}/aggregate — a table under the agreement's statistical disclosure control.

Flow, like an extract: plan (pure) → write-ahead log entry → (differential privacy: spend the budget atomically) →
counts from the registry → disclosure control → one JSON body → finished entry with the counts of what was
suppressed or perturbed (never cell values).

Counts come from a GROUP BY in the registry when the connector offers ``aggregate`` and every dimension has a portable
SQL form; otherwise rows are streamed in batches and grouped here with the same compiled generalizations. Both give the
same table (tests/gateway/test_aggregate_http.py). The dominance rule needs per-contributor totals, differential
privacy needs one row per subject and cell-key perturbation needs each record's keyed hash, so all three always take
the streaming path.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.audit.session import DisclosureSession
from gateway.audit.subjects import LogKeys
from gateway.auth import Principal
from gateway.connectors.base import AggregatingConnector
from gateway.controls.budget import BudgetState
from gateway.controls.budget_ledger import spend_on_record
from gateway.controls.quotas import apply_quotas
from gateway.errors import NotImplementedByGatewayError, ValidationError
from gateway.keysource import AgreementKeySource, agreement_owner, dataset_owner
from gateway.release import AgreementTerms, Produced, buffered_disclosure, plan_for_log
from gateway.services import Services
from gateway.web.models.releases import AggregateRequest, AggregateTable
from gateway.web.openapi.parts import (
    AGREEMENT_ID,
    DISCLOSURE_ID_HEADER,
    RELEASE_PROBLEMS,
    json_body,
    json_response,
    problem_responses,
)
from gateway.web.routes.common import authenticate, read_json, resolve_agreement, services
from gateway.web.routes.release import requester_of, to_response
from policies import Agreement, RequestError
from transforms import compile_fields
from transforms.aggregate import (
    AggregatePlan,
    CellStats,
    Grouper,
    cells_from_pushdown,
    dense_table,
    normalize_cells,
    parse_aggregate_request,
    plan_aggregate,
)
from transforms.cellkey import RecordKeys
from transforms.sdc import CellRounder, ControlledTable, control_table, dp_table

__all__ = ["OPENAPI", "aggregate", "compute_table", "loggable"]

Row = tuple[Any, ...]


def _rounder(found: Services, agreement: Agreement) -> CellRounder | None:
    spec = agreement.aggregate
    if spec is None or spec.rounding is None or spec.rounding["method"] != "random":
        return None
    key = found.keyring.derive(agreement_owner(agreement.id), "rounding").reveal()
    return CellRounder(key, int(spec.rounding["base"]))


def _record_keys(found: Services, agreement: Agreement) -> RecordKeys | None:
    """Record keys of the cell-key method. The secret belongs to the *dataset*, not the agreement: every agreement on
    a dataset then perturbs a set of records the same way, so holding two agreements gives no second perturbation to
    average (the p-table parameters may still differ per agreement)."""
    if agreement.aggregate is None or agreement.aggregate.perturbation is None:
        return None
    return RecordKeys(found.keyring.derive(dataset_owner(agreement.dataset.name), "cell-key").reveal())


def _cells(
    found: Services, agreement: Agreement, plan: AggregatePlan, *, private: bool, record_keys: RecordKeys | None
) -> tuple[dict[Row, Any], str]:
    """Cell statistics and the path that produced them (``pushdown`` or ``streaming``)."""
    dominance = plan.spec.dominance is not None and plan.magnitude
    # A perturbed sum is scaled by the cell's largest contributor: track one per cell, like dominance with n = 1.
    keep = int(plan.spec.dominance["n"]) if dominance and plan.spec.dominance else 0
    if record_keys is not None and plan.magnitude:
        keep = max(keep, 1)
    connector = found.connector
    # Cell keys need HMACs of the subject keys under a secret that must not reach the registry's SQL, so perturbed
    # tables stream. A pushdown grouped by (labels, subject key) was tried and measured slower than streaming
    # (SQLite, 100,000 children: ~870 vs ~480 ms): as many rows come back either way, plus a GROUP BY.
    if not dominance and not private and record_keys is None and isinstance(connector, AggregatingConnector):
        rows = connector.aggregate(plan)
        if rows is not None:
            return cells_from_pushdown(rows, len(plan.dimensions), len(plan.value_columns)), "pushdown"
    subject = plan.release.dataset.column(plan.release.projection[0])
    dims = compile_fields(
        plan.dimensions,
        AgreementKeySource(found.keyring, agreement.id),
        reference_date=plan.release.reference_date,
        subject_format=subject.format if subject is not None else None,
        projection_width=len(plan.release.projection),
    )
    grouper = Grouper(dims, plan.value_indices, dominance_n=keep, one_row_per_subject=private, record_key=record_keys)
    batches = connector.stream(plan.release, batch_rows=found.batch_rows)
    try:
        for batch in batches:
            grouper.add(batch)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    return grouper.finish(), "streaming"


def compute_table(
    found: Services, agreement: Agreement, plan: AggregatePlan, *, epsilon: float | None = None
) -> tuple[ControlledTable, str]:
    """The controlled table of ``plan`` and the path used. ``epsilon``: the differentially private variant."""
    record_keys = None if epsilon is not None else _record_keys(found, agreement)
    cells, path = _cells(found, agreement, plan, private=epsilon is not None, record_keys=record_keys)
    normalized: dict[Row, CellStats] = normalize_cells(plan, cells)
    rounder = _rounder(found, agreement)
    if epsilon is not None:
        return dp_table(plan, normalized, epsilon, rounder=rounder), path
    table = dense_table(plan, normalized)
    return control_table(table, plan, rounder=rounder, cell_keys=record_keys is not None), path


def _private_epsilon(agreement: Agreement, plan: AggregatePlan) -> float | None:
    dp = plan.spec.differential_privacy
    if dp is None:
        return None
    others = [m.text for m in plan.measures if m.kind != "count"]
    if others:
        raise ValidationError(
            f"agreement {agreement.id!r} releases differentially private counts only; {', '.join(others)} would "
            "need declared value bounds, which this gateway version does not support. Ask for count",
            code="measure-not-private",
        )
    return float(dp["epsilon_per_query"])


def loggable(value: Any) -> Any:
    """``value`` for a log entry: canonical JSON has no floats, so a non-integral number becomes its exact text."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else repr(value)
    if isinstance(value, dict):
        return {k: loggable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [loggable(v) for v in value]
    return value


def _body(table: ControlledTable, disclosure_id: str, controls: dict[str, Any]) -> bytes:
    document = {
        "disclosure_id": disclosure_id,
        "columns": list(table.columns),
        "rows": [list(r) for r in table.rows],
        "suppressed": list(table.suppressed),
        "disclosure_control": controls,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _dp_report(state: BudgetState, epsilon: float, report: dict[str, Any]) -> dict[str, Any]:
    return {
        **report,
        "epsilon_query": epsilon,
        "epsilon_spent": round(state.spent, 9),
        "epsilon_remaining": round(state.remaining, 9),
        "epsilon_total": state.total,
    }


async def aggregate(request: Request) -> Response:
    principal: Principal = await authenticate(request)
    found = services(request)
    agreement = resolve_agreement(found, principal, request.path_params["agreement_id"])
    body = await read_json(request, found.max_body_bytes)
    try:
        plan = plan_aggregate(agreement, parse_aggregate_request(body), today=found.today())
    except RequestError as exc:
        raise ValidationError(str(exc), code=exc.code) from exc
    epsilon = _private_epsilon(agreement, plan)
    budget = found.budget
    if epsilon is not None and budget is None:
        raise NotImplementedByGatewayError(
            f"agreement {agreement.id!r} needs a privacy budget store, which this gateway is not configured with; "
            "nothing was released"
        )
    # The agreement's quotas (429, nothing logged) come before the write-ahead entry, as for every release.
    await apply_quotas(found.database, found.clock(), agreement, plan.release, single=True)
    logged = plan.describe()
    # identifier values as keyed hashes
    logged["filters"] = plan_for_log(plan.release, LogKeys.of(found.keyring))["filters"]

    def work(session: DisclosureSession) -> Produced:
        state = None
        dp = plan.spec.differential_privacy
        if epsilon is not None and budget is not None and dp is not None:
            # On record: a budget.spent entry per spend, so verify rebuilds the budget table from the log.
            state = spend_on_record(
                budget, found.log, agreement.id, epsilon, float(dp["epsilon_total"]), session.disclosure_id
            )
        table, path = compute_table(found, agreement, plan, epsilon=epsilon)
        controls = dict(table.report)
        if state is not None and epsilon is not None:
            controls["differential_privacy"] = _dp_report(state, epsilon, dict(controls["differential_privacy"]))
        details = {"path": path, "cells": len(table.rows), "released_cells": table.released_cells, **controls}
        body = _body(table, session.disclosure_id, controls)
        return Produced(body, table.released_cells, details=loggable(details))

    try:
        # Write-ahead: durable before the budget is spent, the registry queried or any byte leaves; the final
        # entry is written once the table was handed to the server.
        released = await buffered_disclosure(
            found,
            requester_of(request, principal),
            AgreementTerms.of(agreement),
            operation="aggregate",
            plan=loggable(logged),
            produce=work,
            finish_on_send=True,
        )
    except RequestError as exc:
        raise ValidationError(str(exc), code=exc.code) from exc
    return to_response(released)


OPENAPI = {
    "/v1/agreements/{agreement_id}/aggregate": {
        "post": {
            "summary": "A table of counts, sums or means under the agreement's disclosure control",
            "description": "Cells below the threshold (and cells needed to protect them) are null and listed "
            "in suppressed; counts may be rounded or noised; see docs/disclosure-control.md",
            "parameters": [AGREEMENT_ID],
            "requestBody": json_body(AggregateRequest, required=False),
            "responses": {
                "200": json_response(
                    "The table; X-Disclosure-Id names the log entry", AggregateTable, headers=DISCLOSURE_ID_HEADER
                ),
                **problem_responses(RELEASE_PROBLEMS, 400, 401, 403, 404, 409, 413, 415, 422, 429, 501, 502, 503, 504),
            },
        }
    }
}
