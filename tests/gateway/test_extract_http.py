"""The extract path through the real app (httpx ASGI transport), on SQLite and PostgreSQL gateway databases."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from policies import parse_agreement
from tests.conftest import coarse_research
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio
RESEARCH = "/v1/agreements/research-continuity/extract"


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if code is not None:
        assert body["type"].endswith("/" + code), body
    return body


def registry_rows(path: Path, query: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


async def test_research_extract_streams_transformed_ndjson(env: Env, registry_path: Path) -> None:
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=env.auth("research"), json={})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    disclosure_id = response.headers["x-disclosure-id"]
    rows = ndjson(response)
    expected = registry_rows(
        registry_path, "SELECT COUNT(*) FROM children WHERE status IN ('enrolled','transferred_out','graduated')"
    )[0][0]
    assert len(rows) == expected > 0
    first = rows[0]
    # The research agreement coarsened for 600 children (tests/conftest.py coarse_research): k-anonymous over birth
    # year and gender, nothing withheld here.
    assert list(first) == ["child_id", "birth_date", "gender", "status", "low_income", "migrant"]
    assert len(first["birth_date"]) == 4  # YYYY
    assert len(first["child_id"]) == 22 and not re.fullmatch(r"C\d{8}", first["child_id"])  # a token, not an id
    assert {r["status"] for r in rows} <= {"enrolled", "transferred_out", "graduated"}
    # flags follow the catalog type (boolean), not the storage engine (SQLite stores 0/1)
    assert {type(r[f]) for r in rows for f in ("low_income", "migrant")} == {bool}
    entry = env.disclosure(disclosure_id)
    assert entry["status"] == "completed"
    assert entry["rows"] == len(rows)
    assert entry["bytes"] == len(response.content)
    import hashlib

    assert entry["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert entry["agreement_id"] == "research-continuity" and entry["agreement_version"] == 1
    assert entry["approved_by"] == "li.ming@registry.example"
    assert entry["agreement_digest"].startswith("sha256:")
    assert entry["principal"] == "pku-education-lab"
    kinds = [json.loads(b)["type"] for b in env.log_bodies()]
    assert kinds == ["disclosure.started", "disclosure.finished"]


async def test_no_raw_identifier_leaves_in_research_extract(env: Env, registry_path: Path) -> None:
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=env.auth("research"), json={"format": "ndjson"})
        csv_response = await client.post(RESEARCH, headers=env.auth("research"), json={"format": "csv"})
    assert response.status_code == 200 and csv_response.status_code == 200
    output = response.text + csv_response.text
    children = registry_rows(registry_path, "SELECT * FROM child_registry")
    secrets_seen = 0
    for child in children:
        for column in (
            "child_id",
            "national_id",
            "name",
            "student_number",
            "guardian_phone",
            "guardian_name",
            "guardian_national_id",
            "address",
        ):
            value = child[column]
            if value:
                secrets_seen += 1
                assert value not in output, f"raw {column} leaked"
    assert secrets_seen > 1000


def _digits_only(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit() or ch in "Xx")


async def test_research_notes_are_redacted(env: Env, registry_path: Path) -> None:
    """Each released note, next to its own registry record (lined up with the agreement's release-order key, which
    the test may use): no name, given name, ID or phone of the child or of any of its guardians, in any spacing;
    and redaction visibly happened."""
    # Version 2 of the research agreement releases no notes; a k-anonymous twin that does, redacted as v1 did.
    text = coarse_research().replace(
        "  notes:           drop", "  notes:           {redact: [CN_RESIDENT_ID, CN_MOBILE, PERSON, EMAIL_ADDRESS]}"
    )
    notes = parse_agreement(text.replace("id: research-continuity", "id: research-notes"), env.services.catalog)
    env.services.agreements[notes.id] = notes  # type: ignore[index]  # a dict in the harness
    async with env.client() as client:
        response = await client.post(
            "/v1/agreements/research-notes/extract",
            headers=env.auth("research"),
            json={"fields": ["child_id", "notes"]},
        )
    assert response.status_code == 200, response.text
    released = ndjson(response)
    children = registry_rows(
        registry_path,
        "SELECT child_id, name, national_id, student_number, notes FROM children "
        "WHERE status IN ('enrolled','transferred_out','graduated') ORDER BY child_id",
    )
    by_id = {c["child_id"]: c for c in children}
    children = [by_id[k] for k in env.release_order("research-notes", list(by_id))]
    guardians: dict[str, list[sqlite3.Row]] = {}
    for g in registry_rows(registry_path, "SELECT child_id, name, national_id, phone FROM guardians"):
        guardians.setdefault(g["child_id"], []).append(g)
    assert len(released) == len(children)
    checked = 0
    for out, child in zip(released, children, strict=True):
        assert (out["notes"] is None) == (child["notes"] is None)
        if child["notes"] is None:
            continue
        note, digits = out["notes"], _digits_only(out["notes"])
        people = [child, *guardians.get(child["child_id"], [])]
        for person in people:
            name = person["name"]
            assert name not in note, "a name leaked"
            if len(name) >= 3:
                assert name[1:] not in note, "a given name leaked"
        for secret in (child["national_id"], child["student_number"], *(g["phone"] for g in people[1:])):
            assert _digits_only(secret).upper() not in digits.upper(), "a number leaked"
        for g in people[1:]:
            assert g["national_id"] not in note
        checked += 1
    assert checked > 100
    notes = "\n".join(r["notes"] for r in released if r["notes"])
    for placeholder in ("<PERSON>", "<CN_MOBILE>", "<CN_RESIDENT_ID>"):
        assert placeholder in notes
    entry = env.disclosure(response.headers["x-disclosure-id"])
    assert entry["status"] == "completed"


async def test_tokens_are_stable_and_keyed(env: Env) -> None:
    body = {"filters": {"status": {"eq": "enrolled"}}, "fields": ["child_id"]}
    async with env.client() as client:
        a = await client.post(RESEARCH, headers=env.auth("research"), json=body)
        b = await client.post(RESEARCH, headers=env.auth("research"), json=body)
    assert a.status_code == b.status_code == 200
    assert a.content == b.content and len(ndjson(a)) > 0
    assert (
        env.disclosure(a.headers["x-disclosure-id"])["sha256"] == env.disclosure(b.headers["x-disclosure-id"])["sha256"]
    )


async def test_csv_format(env: Env) -> None:
    body = {"format": "csv", "fields": ["child_id", "gender", "birth_date"], "limit": 7}
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=env.auth("research"), json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["child_id", "gender", "birth_date"]
    assert len(rows) == 8
    assert env.disclosure(response.headers["x-disclosure-id"])["rows"] == 7


async def test_filters_and_row_scope_push_down(env: Env, registry_path: Path) -> None:
    # Filters on birth dates and residences are tested in test_connectors.py: version 2 filters on status only.
    body = {"filters": {"status": {"eq": "enrolled"}}, "fields": ["birth_date", "status"]}
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=env.auth("research"), json=body)
    assert response.status_code == 200
    rows = ndjson(response)
    expected = registry_rows(registry_path, "SELECT COUNT(*) FROM children WHERE status = 'enrolled'")[0][0]
    details = json.loads(env.disclosure(response.headers["x-disclosure-id"])["details"])["k_anonymity"]
    assert len(rows) == expected - details["suppressed_records"] > 0
    assert all(r["status"] == "enrolled" for r in rows)


async def test_requester_cannot_widen_row_scope(env: Env) -> None:
    body = {"filters": {"status": {"eq": "withdrawn"}}}
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=env.auth("research"), json=body)
    assert response.status_code == 200
    assert ndjson(response) == []


async def test_sql_looking_filter_value_is_just_a_value(env: Env) -> None:
    body = {"filters": {"status": {"eq": "enrolled' OR '1'='1"}}}
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=env.auth("research"), json=body)
    assert response.status_code == 200
    assert ndjson(response) == []


async def test_list_agreements(env: Env) -> None:
    async with env.client() as client:
        mine = await client.get("/v1/agreements", headers=env.auth("research"))
        oversight = await client.get("/v1/agreements", headers=env.auth("compliance"))
    ids = [a["id"] for a in mine.json()["agreements"]]
    assert "research-continuity" in ids and "finance-subsidy" not in ids
    research = next(a for a in mine.json()["agreements"] if a["id"] == "research-continuity")
    assert research["fields"]["birth_date"] == {"op": "generalize", "to": "year"}
    assert "name" not in research["fields"]
    assert research["approved_by"] == "li.ming@registry.example"
    assert {a["id"] for a in oversight.json()["agreements"]} >= {"research-continuity", "finance-subsidy"}


# -- bad input: a clear 4xx problem, nothing released, nothing half-written -------------------------------------------
BAD_REQUESTS = [
    pytest.param("research", "/v1/agreements/no-such-agreement/extract", {}, 404, "not-found", id="unknown-agreement"),
    pytest.param("outsider", RESEARCH, {}, 403, "not-a-party", id="not-a-party"),
    pytest.param("research", "/v1/agreements/research-expired/extract", {}, 403, "agreement-not-valid", id="expired"),
    pytest.param(
        "research", "/v1/agreements/research-future/extract", {}, 403, "agreement-not-valid", id="not-yet-valid"
    ),
    pytest.param("research", RESEARCH, {"fields": ["shoe_size"]}, 422, "unknown-field", id="unknown-field"),
    pytest.param("research", RESEARCH, {"fields": ["name"]}, 422, "unknown-field", id="field-not-released"),
    pytest.param(
        "research", RESEARCH, {"fields": ["national_id", "child_id"]}, 422, "unknown-field", id="dropped-field"
    ),
    pytest.param(
        "research", RESEARCH, {"filters": {"gender": {"eq": "F"}}}, 422, "invalid-filter", id="filter-not-filterable"
    ),
    pytest.param(
        "research", RESEARCH, {"filters": {"name": {"eq": "x"}}}, 422, "invalid-filter", id="filter-on-identifier"
    ),
    pytest.param(
        "research",
        RESEARCH,
        {"filters": {"birth_date": {"gte": 20220101}}},
        422,
        "invalid-filter",
        id="filter-wrong-type",
    ),
    pytest.param(
        "research",
        RESEARCH,
        {"filters": {"birth_date": {"gte": "2022-13-01"}}},
        422,
        "invalid-filter",
        id="filter-bad-date",
    ),
    pytest.param(
        "research", RESEARCH, {"filters": {"status": {"like": "%"}}}, 422, "invalid-filter", id="filter-unknown-op"
    ),
    pytest.param(
        "research", RESEARCH, {"filters": {"status": "enrolled"}}, 422, "invalid-filter", id="filter-not-object"
    ),
    pytest.param("research", RESEARCH, {"format": "xlsx"}, 422, "invalid-request", id="unsupported-format"),
    pytest.param("research", RESEARCH, {"limit": 0}, 422, "invalid-request", id="limit-zero"),
    pytest.param("research", RESEARCH, {"limit": 10**12}, 422, "invalid-request", id="limit-huge"),
    pytest.param("research", RESEARCH, {"limit": "10"}, 422, "invalid-request", id="limit-string"),
    pytest.param("research", RESEARCH, {"select": "*"}, 422, "invalid-request", id="unknown-key"),
    pytest.param("research", RESEARCH, [1, 2], 422, "invalid-request", id="body-not-object"),
    pytest.param(
        "research",
        "/v1/agreements/research-kanon/extract",
        {"fields": ["secret"]},
        422,
        "unknown-field",
        id="k-anonymity-agreement-still-validates",  # k-anonymity itself: tests/gateway/test_kanonymity_http.py
    ),
    pytest.param(
        "stats",
        "/v1/agreements/public-statistics/extract",
        {},
        422,
        "operation-not-allowed",
        id="aggregate-only-agreement",
    ),
]


@pytest.mark.parametrize(("who", "path", "body", "status", "code"), BAD_REQUESTS)
async def test_bad_requests_release_nothing(env: Env, who: str, path: str, body: Any, status: int, code: str) -> None:
    async with env.client() as client:
        response = await client.post(path, headers=env.auth(who), json=body)
    problem = assert_problem(response, status, code)
    assert "x-disclosure-id" not in response.headers
    assert env.log_bodies() == []
    assert problem["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("value", ["110105201903150021", "13812345678", "张伟"])
async def test_filter_values_are_never_echoed(env: Env, value: str) -> None:
    bodies = [
        {"filters": {"birth_date": {"gte": value}}},
        {"filters": {"gender": {"eq": value}}},
        {"filters": {"status": {"eq": value}}, "limit": value},
    ]
    async with env.client() as client:
        for body in bodies:
            response = await client.post(RESEARCH, headers=env.auth("research"), json=body)
            assert response.status_code == 422
            assert value not in response.text


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        pytest.param({}, b"{}", id="no-key"),
        pytest.param({"Authorization": "Bearer dxg_aaaaaaaaaaaaaaaa_" + "A" * 43}, b"{}", id="unknown-key"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, b"{}", id="wrong-scheme"),
        pytest.param({"Authorization": "Bearer "}, b"{}", id="empty-bearer"),
        pytest.param({"Authorization": "Bearer not-a-key"}, b"{}", id="garbage"),
    ],
)
async def test_authentication_required(env: Env, headers: dict[str, str], content: bytes) -> None:
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=headers, content=content)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert env.log_bodies() == []


async def test_tampered_key_is_refused(env: Env) -> None:
    key = env.keys["research"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    async with env.client() as client:
        response = await client.post(RESEARCH, headers={"Authorization": f"Bearer {tampered}"}, json={})
    assert_problem(response, 401)


async def test_malformed_json(env: Env) -> None:
    async with env.client() as client:
        response = await client.post(
            RESEARCH, headers={**env.auth("research"), "Content-Type": "application/json"}, content=b'{"filters": '
        )
    assert_problem(response, 400, "malformed-request")
    assert env.log_bodies() == []


async def test_body_too_large(env: Env) -> None:
    big = json.dumps({"filters": {"status": {"in": ["enrolled"] * 2000}}}).encode()
    async with env.client() as client:
        response = await client.post(
            RESEARCH, headers={**env.auth("research"), "Content-Type": "application/json"}, content=big
        )
    assert_problem(response, 413, "payload-too-large")
    assert env.log_bodies() == []


async def test_wrong_media_type(env: Env) -> None:
    async with env.client() as client:
        response = await client.post(
            RESEARCH, headers={**env.auth("research"), "Content-Type": "text/plain"}, content=b"{}"
        )
    assert_problem(response, 415)


async def test_deeply_nested_json_is_a_clean_4xx(env: Env) -> None:
    nested = b'{"filters": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    async with env.client() as client:
        response = await client.post(
            RESEARCH, headers={**env.auth("research"), "Content-Type": "application/json"}, content=nested
        )
    assert response.status_code in (400, 413, 422)
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_route_and_method_are_problems(env: Env) -> None:
    async with env.client() as client:
        missing = await client.get("/v1/nothing", headers=env.auth("research"))
        method = await client.get(RESEARCH, headers=env.auth("research"))
    assert_problem(missing, 404)
    assert_problem(method, 405)


async def test_operations_endpoints(env: Env) -> None:
    async with env.client() as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        spec = await client.get("/openapi.json")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["checks"] == {"disclosure_log": "ok", "registry": "ok"}
    assert spec.json()["openapi"].startswith("3.1")
    assert "/v1/agreements/{agreement_id}/extract" in spec.json()["paths"]
    assert health.headers["x-request-id"]
    assert health.headers["cache-control"] == "no-store"
