"""GET /v1/agreements describes what a request may say, and the description is the checks: every operator it lists
is accepted at the granularity it states, every other operator and every finer value is refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jsonschema
import pytest

from gateway.web.models.releases import AgreementList
from gateway.web.openapi.document import openapi_document
from gateway.web.routes.describe import describe_agreement
from policies import Agreement, RequestError, parse_agreement, parse_extract_request, plan_extract
from policies.filters import OPERATORS
from tests.conftest import TODAY
from tests.gateway.harness import Env
from tests.gateway.test_aggregate_http import DP_STATS, add_agreements

pytestmark = pytest.mark.anyio

PLANNING = """\
id: planning-study
version: 1
title: A study with every kind of filter
parties: [pku-education-lab]
purpose: research
legal_basis: "Approval"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
valid_until: 2027-12-31
dataset: children
filterable: [{child_id: [eq, in]}, birth_date, residence_code, status, gender, low_income]
fields:
  child_id:       tokenize
  birth_date:     {generalize: year}
  residence_code: {generalize: {prefix: 2}}
  gender:         keep
  status:         keep
  low_income:     keep
disclosure_control:
  k_anonymity:
    k: 2
    quasi_identifiers: [birth_date, gender, residence_code]
    l_diversity: {l: 2, sensitive: [low_income]}
    max_suppression: 0.5
limits: {max_rows_per_request: 250}
"""

#: A value each operator can take for each field, at the granularity the study releases.
ALIGNED: dict[str, dict[str, Any]] = {
    "child_id": {"eq": "C00000001", "in": ["C00000001", "C00000002"]},
    "birth_date": {"gte": "2021-01-01", "lte": "2021-12-31", "between": ["2021-01-01", "2022-12-31"]},
    "residence_code": {"prefix": "11"},
    "status": {"eq": "enrolled", "in": ["enrolled"], "prefix": "en", "gte": "a", "lte": "z", "between": ["a", "z"]},
    "gender": {"eq": "F", "in": ["F", "M"], "prefix": "F", "gte": "A", "lte": "Z", "between": ["A", "Z"]},
    "low_income": {"eq": True, "in": [True]},
}
#: A value of the right type for operators the description must NOT list (or finer than released).
PLAUSIBLE: dict[str, dict[str, Any]] = {
    "child_id": {"prefix": "C0000", "gte": "C00000001", "lte": "C00000009", "between": ["C00000001", "C00000009"]},
    "birth_date": {"eq": "2021-01-01", "in": ["2021-01-01"], "prefix": "2021"},
    "residence_code": {"eq": "110105", "in": ["110105"], "gte": "11", "lte": "12", "between": ["11", "12"]},
    "low_income": {"prefix": "t", "gte": True, "lte": True, "between": [False, True]},
}
FINER = {
    "birth_date": {"gte": "2021-03-14"},  # a day inside the released year: the binary-search attack
    "residence_code": {"prefix": "110"},  # longer than the released prefix
}


def _plan(agreement: Agreement, field: str, op: str, value: Any) -> None:
    request = parse_extract_request({"filters": {field: {op: value}}}, max_limit=1000)
    plan_extract(agreement, request, today=TODAY)


@pytest.fixture
def planning(env: Env) -> Agreement:
    agreement = parse_agreement(PLANNING, env.services.catalog, "planning.yaml")
    add_agreements(env, PLANNING, DP_STATS)
    return agreement


def test_every_listed_operator_is_accepted_and_every_other_refused(env: Env, planning: Agreement) -> None:
    described = describe_agreement(env.services, planning, party=True, today=TODAY)["filters"]
    assert set(described) == set(ALIGNED)
    for field, terms in described.items():
        listed = set(terms["operators"])
        assert listed == set(ALIGNED[field]), field
        for op in listed:
            _plan(planning, field, op, ALIGNED[field][op])  # accepted as described
        for op in set(OPERATORS) - listed:
            with pytest.raises(RequestError):
                _plan(planning, field, op, PLAUSIBLE[field][op])
    for field, finer in FINER.items():
        (op, value) = next(iter(finer.items()))
        assert op in described[field]["operators"]
        with pytest.raises(RequestError):
            _plan(planning, field, op, value)


def test_identifiers_and_tokens_are_lookup_keys_only(env: Env, planning: Agreement) -> None:
    described = describe_agreement(env.services, planning, party=True, today=TODAY)
    child = described["filters"]["child_id"]
    assert child["operators"] == ["eq", "in"] and child["lookup_key"] is True and child["max_in_values"] == 1000
    birth = described["filters"]["birth_date"]
    assert birth["operators"] == ["gte", "lte", "between"] and "year" in birth["granularity"]
    assert birth["value"] == "YYYY-MM-DD, on year bounds" and birth["lookup_key"] is False
    assert described["filters"]["residence_code"]["operators"] == ["prefix"]
    assert "at most 2" in described["filters"]["residence_code"]["granularity"]


async def test_the_listing_plans_an_extract_and_an_aggregate(env: Env, planning: Agreement) -> None:
    async with env.client() as client:
        research = await client.get("/v1/agreements", headers=env.auth("research"))
        stats = await client.get("/v1/agreements", headers=env.auth("stats"))
        spent = await client.post(
            "/v1/agreements/dp-stats/aggregate", headers=env.auth("stats"), json={"group_by": ["gender"]}
        )
        after = await client.get("/v1/agreements", headers=env.auth("stats"))
    assert research.status_code == stats.status_code == spent.status_code == after.status_code == 200
    studies = {a["id"]: a for a in research.json()["agreements"]}
    study = studies["planning-study"]
    assert study["formats"] == ["ndjson", "csv", "parquet"]
    assert study["max_rows_per_request"] == 250
    assert study["disclosure_control"]["k_anonymity"] == {
        "k": 2,
        "quasi_identifiers": ["birth_date", "gender", "residence_code"],
        "l_diversity": 2,
        "sensitive": ["low_income"],
        "max_suppression": 0.5,
    }
    rules = study["field_rules"]
    assert rules["child_id"]["op"] == "tokenize" and rules["child_id"]["parquet_type"] == "string"
    assert rules["birth_date"] == {
        "op": "generalize",
        "to": "year",
        "type": "date",
        "class": "quasi_identifier",
        "parquet_type": "string",
        "filterable": True,
        "verifiable": False,
    }
    assert rules["low_income"]["parquet_type"] == "bool" and study["aggregate"] is None
    assert study["fields"] == planning.describe()["fields"]  # the existing key is unchanged

    before = {a["id"]: a for a in stats.json()["agreements"]}
    table = before["public-statistics"]["aggregate"]
    assert table["min_cell"] == 10 and table["measures"] == ["count"]
    assert table["rounding"]["base"] == 5 and table["perturbation"] is not None
    assert table["dimensions"]["birth_date"] == {"op": "generalize", "to": "year"}
    assert before["public-statistics"]["formats"] == []  # aggregate only: no extract format to offer
    dp = before["dp-stats"]["aggregate"]["differential_privacy"]
    assert dp == {
        "epsilon_total": 1.0,
        "epsilon_per_query": 0.4,
        "epsilon_spent": 0,
        "epsilon_remaining": 1.0,
        "queries": 0,
    }
    dp_after = {a["id"]: a for a in after.json()["agreements"]}["dp-stats"]["aggregate"]["differential_privacy"]
    assert dp_after["epsilon_spent"] == pytest.approx(0.4) and dp_after["epsilon_remaining"] == pytest.approx(0.6)
    assert dp_after["queries"] == 1

    # The body is what the OpenAPI document says: the pydantic model and its published JSON Schema.
    for response in (research, stats, after):
        AgreementList.model_validate(response.json())
        document = openapi_document()
        schema = {"$ref": "#/components/schemas/AgreementList", "components": document["components"]}
        jsonschema.validate(response.json(), schema)


async def test_a_requester_sees_no_terms_of_agreements_it_is_not_party_to(env: Env, planning: Agreement) -> None:
    async with env.client() as client:
        response = await client.get("/v1/agreements", headers=env.auth("outsider"))
    assert response.status_code == 200
    assert response.json() == {"agreements": []}


def test_describe_agreement_is_the_listing_item(env: Env, planning: Agreement) -> None:
    """The function another route (one agreement) calls returns the listing's item, role included."""
    item = describe_agreement(env.services, planning, party=False, today=dt.date(2028, 1, 1))
    assert item["role"] == "oversight" and item["valid_today"] is False
    AgreementList.model_validate({"agreements": [item]})
