"""POST /v1/agreements/{id}/verify through the real app, on SQLite and PostgreSQL gateway databases."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.web.routes.claims import VerifyRateLimiter
from policies import Catalog, parse_agreement
from tests.gateway.harness import Env
from tests.gateway.test_records_http import assert_problem, disclosure_count, indexed_seqs

pytestmark = pytest.mark.anyio
FINANCE = "/v1/agreements/finance-subsidy/verify"

IDENTITY = """\
id: identity-check
version: 1
title: Check a child's identity data
parties: [finance-bureau]
purpose: subsidy_payment
legal_basis: "Test"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
valid_until: 2027-12-31
dataset: children
operations: [verify]
verifiable: [national_id, birth_date, guardian_phone]
"""


def child_where(path: Path, where: str) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute(f"SELECT * FROM child_registry WHERE {where} ORDER BY child_id LIMIT 1").fetchone()  # noqa: S608
    finally:
        conn.close()
    assert row is not None
    return dict(row)


async def verify(env: Env, body: Any, *, who: str = "finance", url: str = FINANCE) -> Any:
    async with env.client() as client:
        return await client.post(url, headers=env.auth(who), json=body)


def answer(response: Any) -> bool:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"match"} and isinstance(body["match"], bool)
    assert response.content in (b'{"match":true}', b'{"match":false}')  # nothing but the boolean
    return bool(body["match"])


async def test_true_and_false_answers_follow_the_registry(env: Env, registry_path: Path) -> None:
    child = child_where(registry_path, "low_income = 1 AND status = 'enrolled'")
    sid = child["child_id"]
    assert answer(await verify(env, {"subject_id": sid, "claims": {"low_income": True, "status": "enrolled"}}))
    assert answer(await verify(env, {"subject_id": sid, "claims": {"residence_code": child["residence_code"]}}))
    other_region = "110101" if child["residence_code"] != "110101" else "310101"
    assert not answer(await verify(env, {"subject_id": sid, "claims": {"residence_code": other_region}}))
    # One false claim among true ones is no match.
    claims = {"low_income": True, "status": "enrolled", "residence_code": other_region}
    assert not answer(await verify(env, {"subject_id": sid, "claims": claims}))


async def test_outside_scope_and_nonexistent_are_no_match(env: Env, registry_path: Path) -> None:
    not_low_income = child_where(registry_path, "low_income = 0 AND status = 'enrolled'")
    # True about the child, but the child is outside the agreement's row scope (low_income = true): no match.
    claims = {"low_income": False, "residence_code": not_low_income["residence_code"]}
    outside = await verify(env, {"subject_id": not_low_income["child_id"], "claims": claims})
    missing = await verify(env, {"subject_id": "C99999999", "claims": claims})
    assert not answer(outside) and not answer(missing)
    assert outside.content == missing.content


async def test_every_verification_is_a_logged_disclosure(env: Env, registry_path: Path) -> None:
    child = child_where(registry_path, "low_income = 1 AND status = 'enrolled'")
    sid = child["child_id"]
    yes = await verify(env, {"subject_id": sid, "claims": {"status": "enrolled"}})
    no = await verify(env, {"subject_id": sid, "claims": {"status": "graduated"}})
    nobody = await verify(env, {"subject_id": "C99999999", "claims": {"status": "enrolled"}})
    assert answer(yes) and not answer(no) and not answer(nobody)
    entries = [env.disclosure(r.headers["x-disclosure-id"]) for r in (yes, no, nobody)]
    assert [(e["operation"], e["status"]) for e in entries] == [("verify", "completed")] * 3
    assert [e["rows"] for e in entries] == [1, 1, 0]
    plan = json.loads(entries[0]["plan"])
    assert plan["fields"] == []  # nothing of the record is released
    assert plan["claims"] == [{"field": "status", "op": "eq", "value": "enrolled"}]
    assert plan["filters"][-1]["field"] == "child_id" and set(plan["filters"][-1]["value"]) == {"hmac"}
    # The subject is in the accounting whatever the answer; a subject that does not exist is not.
    assert indexed_seqs(env, sid) == sorted(e["start_seq"] for e in entries[:2])
    assert indexed_seqs(env, "C99999999") == []
    assert all(sid not in body and "C99999999" not in body for body in env.log_bodies())


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"subject_id": "C00000001", "claims": {"name": "张三"}}, "field-not-verifiable"),
        ({"subject_id": "C00000001", "claims": {"child_id": "C00000001"}}, "field-not-verifiable"),
        ({"subject_id": "C00000001", "claims": {"kindergarten_id": "K00001"}}, "field-not-verifiable"),
        ({"subject_id": "C00000001", "claims": {"low_income": "yes"}}, "invalid-filter"),
        ({"subject_id": "C00000001", "claims": {}}, "invalid-request"),
        ({"subject_id": "C00000001", "claims": ["low_income"]}, "invalid-request"),
        ({"subject_id": "C00000001"}, "invalid-request"),
        ({"subject_id": "C00000001", "claims": {"status": "enrolled"}, "fields": ["name"]}, "invalid-request"),
        ({"subject_id": "C0000 0001", "claims": {"status": "enrolled"}}, "invalid-subject-id"),
        ({"subject_id": 17, "claims": {"status": "enrolled"}}, "invalid-subject-id"),
        ([], "invalid-request"),
    ],
)
async def test_invalid_verifications_are_refused(sqlite_env: Env, body: Any, code: str) -> None:
    response = await verify(sqlite_env, body)
    problem = assert_problem(response, 422, code if code != "invalid-filter" else problem_code(response))
    assert "张三" not in problem["detail"] and "C0000 0001" not in problem["detail"]
    assert disclosure_count(sqlite_env) == 0


def problem_code(response: Any) -> str:
    code: str = response.json()["type"].rsplit("/", 1)[1]
    assert code not in ("field-not-verifiable", "internal-error")
    return code


async def test_claim_values_never_appear_in_errors(sqlite_env: Env) -> None:
    response = await verify(sqlite_env, {"subject_id": "C00000001", "claims": {"residence_code": 110105}})
    assert response.status_code == 422 and "110105" not in response.text


async def test_verify_needs_the_operation_and_a_party(sqlite_env: Env) -> None:
    env = sqlite_env
    body = {"subject_id": "C00000001", "claims": {"status": "enrolled"}}
    refused = await verify(env, body, who="school", url="/v1/agreements/school-transfer/verify")
    assert_problem(refused, 422, "operation-not-allowed")
    assert_problem(await verify(env, body, who="outsider"), 403, "not-a-party")
    assert disclosure_count(env) == 0


async def test_direct_identifier_claims_are_hashed_in_the_log(
    sqlite_env: Env, catalog: Catalog, registry_path: Path
) -> None:
    env = sqlite_env
    agreement = parse_agreement(IDENTITY, catalog, "identity.yaml")
    env.services.agreements[agreement.id] = agreement  # type: ignore[index]
    child = child_where(registry_path, "status = 'graduated'")  # no row scope: any child can be checked
    claims = {"national_id": child["national_id"], "guardian_phone": child["guardian_phone"]}
    url = "/v1/agreements/identity-check/verify"
    assert answer(await verify(env, {"subject_id": child["child_id"], "claims": claims}, url=url))
    claims["birth_date"] = "2019-01-01"
    assert not answer(await verify(env, {"subject_id": child["child_id"], "claims": claims}, url=url))
    logged = "\n".join(env.log_bodies())
    assert child["national_id"] not in logged and child["guardian_phone"] not in logged
    plan = json.loads(env.log_bodies()[0])["plan"]
    assert [c["field"] for c in plan["claims"]] == ["national_id", "guardian_phone"]
    assert all(set(c["value"]) == {"hmac"} for c in plan["claims"])


async def test_rate_limit_answers_429_and_logs_nothing(env: Env, registry_path: Path) -> None:
    env.app.state.verify_limiter = VerifyRateLimiter(per_minute=3)
    child = child_where(registry_path, "low_income = 1 AND status = 'enrolled'")
    body = {"subject_id": child["child_id"], "claims": {"status": "enrolled"}}
    for _ in range(3):
        assert answer(await verify(env, body))
    limited = await verify(env, body)
    problem = assert_problem(limited, 429, "rate-limited")
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 20
    assert child["child_id"] not in problem["detail"]
    assert disclosure_count(env) == 3
    env.flush()
    with env.engine.connect() as conn:
        statuses = [r[0] for r in conn.execute(sa.text("SELECT status FROM disclosures"))]
    assert statuses == ["completed"] * 3


def test_token_bucket_refills_and_keeps_pairs_apart() -> None:
    now = [1000.0]
    limiter = VerifyRateLimiter(per_minute=2, clock=lambda: now[0])
    assert limiter.acquire("a", "p") == 0 and limiter.acquire("a", "p") == 0
    wait = limiter.acquire("a", "p")
    assert wait == pytest.approx(30.0)
    assert limiter.acquire("a", "q") == 0  # another principal has its own bucket
    assert limiter.acquire("b", "p") == 0  # and another agreement
    now[0] += 30.0
    assert limiter.acquire("a", "p") == 0
    assert limiter.acquire("a", "p") > 0
    now[0] += 3600.0  # refills up to the bucket size, not beyond
    assert [limiter.acquire("a", "p") == 0 for _ in range(3)] == [True, True, False]
    with pytest.raises(ValueError, match="per_minute"):
        VerifyRateLimiter(per_minute=0)


async def test_openapi_describes_verify(sqlite_env: Env) -> None:
    async with sqlite_env.client() as client:
        document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/agreements/{agreement_id}/verify"]["post"]
    assert {"200", "401", "403", "422", "429", "502", "503"} <= set(operation["responses"])
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["properties"] == {"match": {"type": "boolean"}} and schema["additionalProperties"] is False
