"""GET /v1/agreements/{id}/records/{subject_id} through the real app, on SQLite and PostgreSQL gateway databases."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.audit.reader import LogReader
from gateway.connectors import MemoryConnector
from policies import Catalog
from tests.gateway.harness import Env, build_env, sqlite_url

pytestmark = pytest.mark.anyio
SCHOOL = "/v1/agreements/school-transfer/records/"
SCHOOL_FIELDS = [
    "child_id",
    "student_number",
    "name",
    "gender",
    "birth_date",
    "guardian_name",
    "guardian_phone",
    "residence_code",
    "kindergarten_id",
    "disability",
]


def registry_row(path: Path, where: str, params: tuple[Any, ...] = ()) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute(f"SELECT * FROM child_registry WHERE {where} ORDER BY child_id LIMIT 1", params).fetchone()  # noqa: S608
    finally:
        conn.close()
    assert row is not None, where
    return dict(row)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["type"].endswith("/" + code), body
    return body


def subject_hash(env: Env, subject_id: str) -> bytes:
    key = env.services.keyring.derive("log:subject-index", "subjects").reveal()
    return hmac.new(key, subject_id.encode(), hashlib.sha256).digest()[:16]


def indexed_seqs(env: Env, subject_id: str) -> list[int]:
    """The disclosures the accounting lists for ``subject_id`` (the compliance API's query), by start index."""
    reader = LogReader(env.engine, flush=env.flush)
    return sorted(int(r.start_seq) for r in reader.subject_disclosures(subject_hash(env, subject_id)))


def raw_index_seqs(env: Env, subject_id: str) -> list[int]:
    env.flush()
    with env.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT disclosure_seq FROM subject_index WHERE subject_hash = :h"),
            {"h": subject_hash(env, subject_id)},
        )
        return sorted(int(r[0]) for r in rows)


def disclosure_count(env: Env) -> int:
    env.flush()
    with env.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM disclosures")).scalar_one())


async def test_receiving_school_fetches_a_child_in_scope(env: Env, registry_path: Path) -> None:
    child = registry_row(registry_path, "status = 'enrolled'")
    async with env.client() as client:
        response = await client.get(SCHOOL + child["child_id"], headers=env.auth("school"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    record = response.json()
    assert isinstance(record, dict)
    assert list(record) == SCHOOL_FIELDS  # exactly the agreement's released fields, in its order
    for name in ("child_id", "student_number", "name", "gender", "birth_date", "guardian_name", "guardian_phone"):
        assert record[name] == child[name], name
    assert record["residence_code"] == child["residence_code"]
    assert record["disability"] in (bool(child["disability"]), child["disability"])
    # (the demo student number embeds the resident id, so look for the id as a whole JSON value)
    assert json.dumps(child["national_id"]) not in response.text and child["address"] not in response.text

    entry = env.disclosure(response.headers["x-disclosure-id"])
    assert entry["operation"] == "record" and entry["status"] == "completed"
    assert entry["principal"] == "receiving-school" and entry["agreement_id"] == "school-transfer"
    assert entry["rows"] == 1 and entry["bytes"] == len(response.content)
    assert entry["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert indexed_seqs(env, child["child_id"]) == [entry["start_seq"]]
    plan = json.loads(entry["plan"])
    assert plan["limit"] == 2
    assert plan["filters"][0] == {"field": "status", "op": "in", "value": ["enrolled", "transferred_out"]}
    assert plan["filters"][-1]["field"] == "child_id" and "hmac" in plan["filters"][-1]["value"]
    assert all(child["child_id"] not in body for body in env.log_bodies())


async def test_out_of_scope_and_nonexistent_children_get_the_same_404(env: Env, registry_path: Path) -> None:
    outside = registry_row(registry_path, "status = 'withdrawn'")["child_id"]
    missing = "C99999999"
    async with env.client() as client:
        first = await client.get(SCHOOL + outside, headers=env.auth("school"))
        second = await client.get(SCHOOL + missing, headers=env.auth("school"))
    bodies = [assert_problem(r, 404, "not-found") for r in (first, second)]
    for body in bodies:
        body.pop("request_id")
    assert bodies[0] == bodies[1]
    assert outside not in first.text and missing not in second.text
    # The lookups are disclosures that released nothing: logged, finished as completed with 0 rows, and not in
    # the accounting of either id (the index holds the id asked for, written with the write-ahead entry).
    for response, subject in ((first, outside), (second, missing)):
        entry = env.disclosure(response.headers["x-disclosure-id"])
        assert (entry["status"], entry["rows"], entry["bytes"], entry["operation"]) == ("completed", 0, 0, "record")
        assert entry["sha256"] == hashlib.sha256(b"").hexdigest()
        assert indexed_seqs(env, subject) == []
        assert raw_index_seqs(env, subject) == [entry["start_seq"]]
    assert disclosure_count(env) == 2


async def test_a_non_party_is_refused_and_nothing_is_logged(env: Env, registry_path: Path) -> None:
    child = registry_row(registry_path, "status = 'enrolled'")["child_id"]
    async with env.client() as client:
        outsider = await client.get(SCHOOL + child, headers=env.auth("outsider"))
        research = await client.get(SCHOOL + child, headers=env.auth("research"))
        anonymous = await client.get(SCHOOL + child)
    assert_problem(outsider, 403, "not-a-party")
    assert_problem(research, 403, "not-a-party")
    assert_problem(anonymous, 401, "unauthenticated")
    assert disclosure_count(env) == 0


async def test_an_agreement_without_record_refuses_the_operation(env: Env, registry_path: Path) -> None:
    child = registry_row(registry_path, "status = 'enrolled' AND low_income = 1")["child_id"]
    async with env.client() as client:
        finance = await client.get(f"/v1/agreements/finance-subsidy/records/{child}", headers=env.auth("finance"))
        research = await client.get(f"/v1/agreements/research-continuity/records/{child}", headers=env.auth("research"))
    assert "record" in assert_problem(finance, 422, "operation-not-allowed")["detail"]
    assert_problem(research, 422, "operation-not-allowed")
    assert disclosure_count(env) == 0


@pytest.mark.parametrize(
    "subject_id",
    [
        "C0000'; DROP TABLE children;--",
        "x" * 65,
        "C00000001.json",
        "C00000001 OR 1=1",
        "儿童00001",
        "C0000%00",
        "C00000001+",
    ],
)
async def test_malformed_subject_ids_are_refused_without_echo(sqlite_env: Env, subject_id: str) -> None:
    env = sqlite_env
    async with env.client() as client:
        response = await client.get(SCHOOL + httpx.URL(subject_id).raw_path.decode(), headers=env.auth("school"))
    body = assert_problem(response, 422, "invalid-subject-id")
    assert subject_id not in response.text and subject_id[:12] not in body["detail"]
    assert disclosure_count(env) == 0


async def test_the_longest_valid_subject_id_is_a_lookup(sqlite_env: Env) -> None:
    env = sqlite_env
    async with env.client() as client:
        response = await client.get(SCHOOL + "A_-9" * 16, headers=env.auth("school"))
    assert_problem(response, 404, "not-found")
    assert disclosure_count(env) == 1


@pytest.fixture
def memory_env(catalog: Catalog, registry_path: Path, tmp_path: Path) -> Iterator[tuple[Env, MemoryConnector]]:
    conn = sqlite3.connect(registry_path)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM child_registry")]
    conn.close()
    twin = dict(next(r for r in rows if r["status"] == "enrolled"))
    twin["name"] = "Twin Record"
    rows.append(twin)  # a registry with two records for one subject key
    connector = MemoryConnector({"child_registry": rows})
    environment = build_env(catalog, sqlite_url(tmp_path / "gateway.db"), connector=connector)
    environment.extra["twin"] = twin["child_id"]
    yield environment, connector
    environment.services.close()
    environment.engine.dispose()


async def test_two_records_for_one_subject_are_a_registry_error_and_nothing_leaves(
    memory_env: tuple[Env, MemoryConnector],
) -> None:
    env, _ = memory_env
    twin = env.extra["twin"]
    async with env.client() as client:
        response = await client.get(SCHOOL + twin, headers=env.auth("school"))
    body = assert_problem(response, 502, "registry-duplicate-subject")
    assert "Twin Record" not in response.text and twin not in body["detail"]
    with env.engine.connect() as conn:
        entry = conn.execute(sa.text("SELECT status, rows, bytes, error FROM disclosures")).one()
    assert tuple(entry) == ("failed", 0, 0, "registry-duplicate-subject")
    assert indexed_seqs(env, twin) == []


async def test_an_unavailable_registry_fails_the_entry(memory_env: tuple[Env, MemoryConnector]) -> None:
    env, connector = memory_env
    connector.available = False
    async with env.client() as client:
        response = await client.get(SCHOOL + "C00000001", headers=env.auth("school"))
    assert_problem(response, 502, "registry-unavailable")
    with env.engine.connect() as conn:
        assert tuple(conn.execute(sa.text("SELECT status, error FROM disclosures")).one()) == (
            "failed",
            "registry-unavailable",
        )


async def test_openapi_describes_the_records_route(sqlite_env: Env) -> None:
    async with sqlite_env.client() as client:
        document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/agreements/{agreement_id}/records/{subject_id}"]["get"]
    assert {"200", "401", "403", "404", "422", "502", "503"} <= set(operation["responses"])
    assert operation["responses"]["404"]["content"]["application/problem+json"]
