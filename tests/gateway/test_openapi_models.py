"""The API models: body validation never repeats what the caller sent, and the models agree with what they describe.

The document they generate is tested by tests/reliability/test_schemathesis.py (every response against it).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from gateway.audit.reader import ACCOUNTING_FIELDS
from gateway.errors import MalformedRequestError, ValidationError
from gateway.web.models.actions import ActionRequest
from gateway.web.models.base import RequestBody, parse_body
from gateway.web.models.compliance import AccountingEntry, SubjectQuery
from gateway.web.models.lifecycle import ApplyRequest, ReidentifyRequest, StateChange
from gateway.web.models.releases import VerifyRequest
from gateway.web.openapi.document import openapi_document

SECRET = "C0000 0001-张三"  # what must never come back in a problem detail


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (VerifyRequest, {"subject_id": SECRET, "claims": {}, SECRET: 1}),
        (VerifyRequest, {"subject_id": SECRET}),
        (VerifyRequest, [SECRET]),
        (VerifyRequest, SECRET),
        (SubjectQuery, {"subject_id": SECRET * 10}),
        (SubjectQuery, {"subject_id": 17, "other": SECRET}),
        (SubjectQuery, None),
        (StateChange, {"state": ["suspended", SECRET], "reason": {SECRET: SECRET}}),
        (StateChange, {"reason": SECRET}),
        (ApplyRequest, {"yaml": 12345678901}),
        (ReidentifyRequest, {"field": SECRET, "tokens": [SECRET]}),
    ],
)
def test_refusals_name_fields_never_values(model: type[BaseModel], body: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_body(model, body, hint="the body is {...}")
    detail = refused.value.detail
    assert refused.value.code == "invalid-request" and refused.value.status == 422
    assert detail.startswith("the body is {...}: ")
    for shown in (SECRET, "C0000", "张三", "12345678901"):
        assert shown not in detail, detail


def test_refusals_may_be_the_routes_400() -> None:
    with pytest.raises(MalformedRequestError) as refused:
        parse_body(StateChange, {"state": "suspended", "why": "x"}, hint="...", error=MalformedRequestError)
    assert refused.value.status == 400
    assert "unknown key(s) (allowed: reason, state)" in refused.value.detail and "why" not in refused.value.detail


def test_a_valid_body_is_the_model() -> None:
    assert parse_body(SubjectQuery, {"subject_id": "  C00000001 "}, hint="").subject_id == "C00000001"
    change = parse_body(StateChange, {"state": "expired", "reason": None}, hint="")
    assert (change.state, change.reason) == ("expired", None)  # which states exist is the lifecycle's (422)
    asked = parse_body(ReidentifyRequest, {"field": 1, "tokens": "x", "reason": []}, hint="")
    assert (asked.field, asked.tokens, asked.reason) == (1, "x", [])  # checked by the route, each with its code


def test_the_accounting_entry_is_the_readers() -> None:
    assert list(AccountingEntry.model_fields) == list(ACCOUNTING_FIELDS)


#: operation -> the model its route validates the JSON body with
VALIDATED = {
    ("/v1/agreements/{agreement_id}/verify", "post"): VerifyRequest,
    ("/v1/subjects/disclosures", "post"): SubjectQuery,
    ("/v1/admin/agreements", "post"): ApplyRequest,
    ("/v1/admin/agreements/{agreement_id}/state", "post"): StateChange,
    ("/v1/agreements/{agreement_id}/reidentify", "post"): ReidentifyRequest,
    ("/v1/admin/actions", "post"): ActionRequest,
}


@pytest.mark.parametrize(("path", "method"), VALIDATED)
def test_request_bodies_are_documented_as_they_are_validated(path: str, method: str) -> None:
    model = VALIDATED[path, method]
    document = openapi_document()
    schema = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert issubclass(model, RequestBody)
    assert schema["additionalProperties"] is False
    required = {info.alias or name for name, info in model.model_fields.items() if info.is_required()}
    assert set(schema.get("required", [])) == required
    assert set(schema["properties"]) == {info.alias or name for name, info in model.model_fields.items()}
