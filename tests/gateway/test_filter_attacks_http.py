"""Measured attacks on filters finer than the release, replayed through the real app on hand-written registry data.
Each must fail: the refused requests are 422 problems (invalid-filter) that release nothing and never echo a value.

* A binary search with ``between`` on a birth date released by month (about ten requests used to give the day).
* ``in`` on a residence code released as its first four digits (used to give the six-digit code).
* ``prefix`` harvesting of a released identifier on the receiving-school agreement (ten records of unknown children
  per call), and of a tokenized one on an agreement like it.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from policies import Catalog, PolicyLoadError, parse_agreement
from tests.gateway.harness import Env, build_env, sqlite_url

pytestmark = pytest.mark.anyio
RESEARCH = "/v1/agreements/research-probe/extract"
# The release the review attacked (the demo's research agreement before version 2): birth dates by month, residence
# codes by 4 digits, both filterable. Version 2 no longer lets either be filtered at all; this keeps the attack
# meaningful. k = 2 with any suppression allowed: the hand-written registry below holds eight children.
PROBE = """\
id: research-probe
version: 1
title: Research extract as attacked (months, 4-digit codes, filterable)
parties: [pku-education-lab]
purpose: research
legal_basis: "Ethics approval TEST-2026-1"
approved_by: li.ming@registry.example
valid_from: 2026-01-01
dataset: children
row_scope:
  status: {in: [enrolled, transferred_out, graduated]}
filterable: [birth_date, status, residence_code]
fields:
  child_id:        {tokenize: {domain: pku-study}}
  birth_date:      {generalize: month}
  residence_code:  {generalize: {prefix: 4}}
  status:          keep
disclosure_control:
  k_anonymity: {k: 2, quasi_identifiers: [birth_date, residence_code], max_suppression: 1.0}
"""
SCHOOL = "/v1/agreements/school-transfer/extract"

TARGET_BORN = "2021-03-14"
TARGET_CODE = "110105"
# (child_id, birth_date, residence_code, student_number, status): the target and the children it hides among
CHILDREN = [
    ("C0001", TARGET_BORN, TARGET_CODE, "S2026110105001", "enrolled"),
    ("C0002", "2021-03-02", "110101", "S2026110101002", "enrolled"),
    ("C0003", "2021-03-27", "110108", "S2026110108003", "enrolled"),
    ("C0004", "2021-03-31", "110105", "S2026110105004", "transferred_out"),
    ("C0005", "2021-04-01", "110105", "S2026110105005", "enrolled"),
    ("C0006", "2021-02-28", "120101", "S2026120101006", "enrolled"),
    ("C0007", "2020-11-30", "110102", "S2026110102007", "graduated"),
    ("C0008", "2022-01-09", "120102", "S2026120102008", "enrolled"),
]


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def assert_refused(response: httpx.Response, *secrets: str) -> str:
    """A refused filter: a 422 problem saying which granularity is allowed, nothing released, no value echoed."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/invalid-filter"), body
    assert "x-disclosure-id" not in response.headers
    for secret in secrets:
        assert secret not in response.text
    detail: str = body["detail"]
    return detail


@pytest.fixture
def attack_env(catalog: Catalog, tmp_path: Path) -> Iterator[Env]:
    path = tmp_path / "attack-registry.db"
    conn = sqlite3.connect(path)
    dataset = catalog.datasets["children"]
    conn.execute(f"CREATE TABLE child_registry ({', '.join(dataset.columns)})")
    for child_id, born, code, student, status in CHILDREN:
        row = {
            "child_id": child_id,
            "name": f"Child {child_id[-1]}",
            "gender": "F",
            "birth_date": born,
            "hukou_region": code,
            "residence_code": code,
            "student_number": student,
            "kindergarten_id": "KG01",
            "enrollment_date": "2024-09-01",
            "status": status,
            "guardian_name": f"Guardian {child_id[-1]}",
            "low_income": 0,
            "disability": 0,
            "migrant": 1,
            "left_behind": 0,
        }
        # column names from the catalog, values bound
        insert = f"INSERT INTO child_registry ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"  # noqa: S608
        conn.execute(insert, list(row.values()))
    conn.commit()
    conn.close()
    environment = build_env(catalog, sqlite_url(tmp_path / "gateway.db"), sqlite_url(path))
    probe = parse_agreement(PROBE, catalog, "research-probe.yaml")
    environment.services.agreements[probe.id] = probe  # type: ignore[index]  # a dict in the harness
    yield environment
    environment.services.close()
    environment.engine.dispose()


async def test_binary_search_on_a_month_generalized_birth_date_fails(attack_env: Env) -> None:
    env = attack_env
    async with env.client() as client:
        # What the release shows: the target's month, and nothing finer.
        whole = await client.post(
            RESEARCH,
            headers=env.auth("research"),
            json={"filters": {"birth_date": {"between": ["2021-03-01", "2021-03-31"]}}},
        )
        assert whole.status_code == 200, whole.text
        march = ndjson(whole)
        assert {r["birth_date"] for r in march} == {"2021-03"} and len(march) == 4  # the whole class, every day

        # The attack: halve the candidate days until one is left ("are there March children born up to day mid?").
        # Every probe is refused, so no answer depends on the target's day and the search learns nothing.
        low, high, details = 1, 31, set()
        while low < high:
            mid = (low + high) // 2
            probe = {"birth_date": {"between": ["2021-03-01", f"2021-03-{mid:02d}"]}}
            response = await client.post(RESEARCH, headers=env.auth("research"), json={"filters": probe})
            detail = assert_refused(response, f"2021-03-{mid:02d}", TARGET_BORN)
            assert "by month" in detail and "first day of a month" in detail
            details.add(detail)
            if response.status_code == 200 and ndjson(response):  # the answer the attack needed
                high = mid
            else:
                low = mid + 1
        assert low != int(TARGET_BORN[-2:])  # the search ends on the last day it could not exclude, not the target's
        assert len(details) == 1  # one and the same refusal whatever was asked

        # The other shapes of the same question are refused too.
        for condition in (
            {"eq": TARGET_BORN},
            {"in": [TARGET_BORN, "2021-03-15"]},
            {"gte": "2021-03-14"},
            {"lte": "2021-03-13"},
            {"gte": "2021-03-01", "lte": "2021-03-14"},
        ):
            response = await client.post(
                RESEARCH, headers=env.auth("research"), json={"filters": {"birth_date": condition}}
            )
            assert_refused(response, TARGET_BORN, "2021-03-13", "2021-03-15")


async def test_in_on_a_prefix_generalized_code_fails(attack_env: Env) -> None:
    env = attack_env
    async with env.client() as client:
        candidates = [f"1101{n:02d}" for n in range(1, 20)]
        for condition in (
            {"in": candidates},
            {"eq": TARGET_CODE},
            {"prefix": TARGET_CODE},
            {"prefix": "11010"},
            {"between": ["110105", "110105"]},
        ):
            response = await client.post(
                RESEARCH, headers=env.auth("research"), json={"filters": {"residence_code": condition}}
            )
            detail = assert_refused(response, TARGET_CODE, "11010")
            assert "first 4 character(s)" in detail or "not allowed" in detail
        # At the released granularity the filter works, and selects the whole class.
        response = await client.post(
            RESEARCH, headers=env.auth("research"), json={"filters": {"residence_code": {"prefix": "1101"}}}
        )
        assert response.status_code == 200, response.text
        rows = ndjson(response)
        assert {r["residence_code"] for r in rows} == {"1101"}
        expected = sum(
            1 for c in CHILDREN if c[2].startswith("1101") and c[4] in ("enrolled", "transferred_out", "graduated")
        )
        # Every such child is counted; k = 2 withholds the ones alone in their (month, code) class.
        details = json.loads(env.disclosure(response.headers["x-disclosure-id"])["details"])["k_anonymity"]
        assert details["records"] == expected and len(rows) == details["released_records"] >= 2


async def test_prefix_harvesting_of_student_numbers_on_the_school_agreement_fails(attack_env: Env) -> None:
    env = attack_env
    async with env.client() as client:
        for condition in (
            {"prefix": "S2026"},
            {"prefix": "S"},
            {"gte": "S2026110105000"},
            {"between": ["S2026110105000", "S2026119999999"]},
            {"in": ["S2026110105001", "S2026110101002"]},  # declared eq only: one child per request
        ):
            response = await client.post(
                SCHOOL, headers=env.auth("school"), json={"filters": {"student_number": condition}}
            )
            detail = assert_refused(response, "S2026")
            assert "student_number" in detail
        # The lookup the agreement is for still works: the one child whose number the family brought.
        response = await client.post(
            SCHOOL, headers=env.auth("school"), json={"filters": {"student_number": {"eq": "S2026110105001"}}}
        )
        assert response.status_code == 200, response.text
        assert [r["child_id"] for r in ndjson(response)] == ["C0001"]
        # Filters on what the school does not receive are refused as well.
        response = await client.post(
            SCHOOL, headers=env.auth("school"), json={"filters": {"national_id": {"eq": "110105202103140011"}}}
        )
        assert_refused(response, "110105202103140011")


SCHOOL_LIKE = """\
id: school-like
version: 1
title: Transfer of a child's record, the student number pseudonymised
parties: [receiving-school]
purpose: enrollment_transfer
legal_basis: "Student status management measures art. 15 (transfer of student records)"
approved_by: wang.fang@registry.example
valid_from: 2026-01-01
valid_until: 2026-12-31
dataset: children
operations: [extract]
filterable: %s
fields:
  name: keep
  student_number: tokenize
  gender: keep
  birth_date: {generalize: month}
limits: {max_rows_per_request: 10}
"""


async def test_prefix_harvesting_of_a_token_fails(attack_env: Env) -> None:
    env = attack_env
    catalog = env.services.catalog
    # An agreement cannot offer prefix (or a range, or a bare name) on a tokenized identifier at all...
    for filterable in ("[student_number]", "[{student_number: [prefix]}]", "[{student_number: [eq, gte]}]"):
        with pytest.raises(PolicyLoadError) as info:
            parse_agreement(SCHOOL_LIKE % filterable, catalog, "school-like.yaml")
        assert info.value.path == "filterable[0]"
    # ...and where it declares the lookup, a prefix request is refused.
    agreement = parse_agreement(SCHOOL_LIKE % "[{student_number: [eq]}]", catalog, "school-like.yaml")
    env.services.agreements[agreement.id] = agreement  # type: ignore[index]  # a dict in the harness
    url = "/v1/agreements/school-like/extract"
    async with env.client() as client:
        response = await client.post(
            url, headers=env.auth("school"), json={"filters": {"student_number": {"prefix": "S2026"}}}
        )
        assert "not allowed" in assert_refused(response, "S2026")
        response = await client.post(
            url, headers=env.auth("school"), json={"filters": {"student_number": {"eq": "S2026110101002"}}}
        )
        assert response.status_code == 200, response.text
        rows = ndjson(response)
        assert len(rows) == 1 and rows[0]["birth_date"] == "2021-03" and "S2026" not in response.text


def test_the_attack_data_is_what_the_tests_assume() -> None:
    # The binary search above would have had something to find: the target is alone on its day.
    assert sum(1 for c in CHILDREN if c[1] == TARGET_BORN) == 1
    assert dt.date.fromisoformat(TARGET_BORN).month == 3
