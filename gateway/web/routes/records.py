"""GET /v1/agreements/{id}/records/{subject_id} — one subject's record under the agreement (e.g. a transfer).

The plan is the agreement's released fields and row scope plus ``subject_key eq subject_id``, limited to two rows so
that a registry holding duplicates for one key is detected (502) instead of silently releasing one of them. A subject
that does not exist and one outside the row scope get the same 404 (``release``'s single mode), so the endpoint never
tells a requester that a child exists somewhere it may not look. Either way the lookup is a logged disclosure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import ValidationError
from gateway.release import Row, release_one
from gateway.web.models.releases import SUBJECT_ID_PATTERN
from gateway.web.openapi.parts import (
    AGREEMENT_ID,
    DISCLOSURE_ID_HEADER,
    EGRESS_409,
    PROBLEM_SCHEMA,
    RELEASE_PROBLEMS,
    json_response,
    path_parameter,
    problem_responses,
)
from gateway.web.routes.common import authenticate, resolve_agreement, services
from gateway.web.routes.release import requester_of, to_response
from policies import Agreement, ColumnType, Dataset, ExtractRequest, Filter, ReleasePlan, RequestError, plan_extract
from transforms import CompiledPlan, NdjsonWriter

__all__ = ["OPENAPI", "SUBJECT_ID", "records", "subject_filter"]

#: What a subject id may look like on the wire. Checked before anything else touches it; never echoed back.
SUBJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Two rows are enough to tell "one record" from "the registry is inconsistent".
_SINGLE_LIMIT = 2


def subject_filter(dataset: Dataset, subject_id: object) -> Filter:
    """The condition selecting one subject, typed like the subject key column; 422 (without the value) otherwise."""
    if not isinstance(subject_id, str) or SUBJECT_ID.fullmatch(subject_id) is None:
        raise ValidationError(
            "the subject id must be 1-64 characters of letters, digits, '_' or '-'", code="invalid-subject-id"
        )
    column = dataset.columns[dataset.subject_key]
    if column.type is ColumnType.INTEGER:
        if not subject_id.isdigit():
            raise ValidationError("the subject id of this dataset is a number", code="invalid-subject-id")
        return Filter(column.name, "eq", int(subject_id))
    if column.type is not ColumnType.STRING:
        # Catalogs key subjects by string or integer ids; anything else cannot be looked up by a path segment.
        raise ValidationError(f"dataset {dataset.name!r} cannot be looked up by subject id", code="invalid-subject-id")
    return Filter(column.name, "eq", subject_id)


#: The record plan of an agreement for a day (before the subject is added) is the same for every request; planning
#: it costs more than the registry read of one record. Keyed by the agreement object (agreements are immutable and
#: re-parsed when their version changes) and the day; the entry keeps the object, so its id cannot be reused.
_PLANS: dict[tuple[int, dt.date], tuple[Agreement, ReleasePlan]] = {}
_PLANS_MAX = 256


def _record_plan(agreement: Agreement, today: dt.date) -> ReleasePlan:
    key = (id(agreement), today)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is agreement:
        return hit[1]
    try:
        plan = plan_extract(
            agreement, ExtractRequest(None, None, "json", _SINGLE_LIMIT), today=today, operation="record"
        )
    except RequestError as exc:
        raise ValidationError(str(exc), code=exc.code) from exc
    if len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
    _PLANS[key] = (agreement, plan)
    return plan


def _render_one(compiled: CompiledPlan) -> Callable[[Row | None], bytes | None]:
    writer = NdjsonWriter(compiled.columns)

    def render(row: Row | None) -> bytes | None:
        if row is None:
            return None
        # One NDJSON line without its newline is exactly one JSON object, with the extract's value encoding.
        return writer.batch([compiled.row(row)]).rstrip(b"\n")

    return render


async def records(request: Request) -> Response:
    principal = await authenticate(request)
    found = services(request)
    agreement = resolve_agreement(found, principal, request.path_params["agreement_id"])
    plan = _record_plan(agreement, found.today())
    # The subject is added after planning: it is not a requester filter (the agreement need not list the key as
    # filterable), and the row scope stays in front of it.
    subject = subject_filter(agreement.dataset, request.path_params["subject_id"])
    plan = dataclasses.replace(plan, filters=(*plan.filters, subject), limit=_SINGLE_LIMIT)
    released = await release_one(
        found,
        requester_of(request, principal),
        agreement,
        plan,
        operation="record",
        render=_render_one,
        subject=subject.value,
        media_type="application/json",
    )
    return to_response(released)


OPENAPI = {
    "/v1/agreements/{agreement_id}/records/{subject_id}": {
        "get": {
            "summary": "One subject's record under the agreement (operation record), as one JSON object",
            "parameters": [
                AGREEMENT_ID,
                path_parameter(
                    "subject_id",
                    SUBJECT_ID_PATTERN,
                    "The subject key of the agreement's dataset (never echoed in errors or logs)",
                ),
            ],
            "responses": {
                "200": json_response(
                    "The record, transformed by the agreement's field rules",
                    {"type": "object"},
                    headers=DISCLOSURE_ID_HEADER,
                ),
                **problem_responses(
                    RELEASE_PROBLEMS, 401, 403, 404, 409, 422, 429, 501, 502, 503, 504, t409=EGRESS_409
                ),
                "404": {
                    "description": "Unknown agreement, or no record for this subject under the agreement "
                    "(the same answer whether it does not exist or is outside the agreement's scope)",
                    "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
                },
            },
        }
    }
}
