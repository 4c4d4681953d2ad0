"""Subject accounting by a subject alias (national ID, student number): looked up in the registry, never stored.

A guardian's question arrives with the child's national ID or student number; the accounting must find the same
disclosures as by the registry's ``child_id``, whatever input method typed the ID (lowercase check digit, full-width
digits, spaces), must not find anything by a near miss or an injection, must refuse an identifier that names two
children, and must answer an unknown identifier exactly like a child without disclosures.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import sqlalchemy as sa
from hypothesis import given
from sqlmodel import SQLModel

from policies import Catalog, PolicyLoadError, parse_catalog
from policies.catalog import Column, ColumnClass, ColumnType
from policies.subjects import canonical_alias
from tests.gateway.harness import Env, build_env, sqlite_url
from tests.gateway.test_ui import SAME_ORIGIN, csrf, log_of, signed_in

pytestmark = pytest.mark.anyio

RESIDENT = Column("national_id", ColumnType.STRING, ColumnClass.DIRECT_IDENTIFIER, "resident_id", "", None)
STUDENT = Column("student_number", ColumnType.STRING, ColumnClass.DIRECT_IDENTIFIER, "student_number", "", None)
FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789GXgx"}


def a_child_with_x(registry: Path) -> tuple[str, str, str]:
    """An enrolled child (in school-transfer's row scope) whose national ID ends in the check digit X."""
    conn = sqlite3.connect(registry)
    try:
        row = conn.execute(
            "SELECT child_id, national_id, student_number FROM child_registry "
            "WHERE status = 'enrolled' AND national_id LIKE '%X' ORDER BY child_id LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return str(row[0]), str(row[1]), str(row[2])


async def accounting(env: Env, subject_id: str, who: str = "compliance") -> Any:
    async with env.client() as client:
        response = await client.post("/v1/subjects/disclosures", headers=env.auth(who), json={"subject_id": subject_id})
    return response


async def disclose(env: Env, student: str) -> str:
    async with env.client() as client:
        response = await client.post(
            "/v1/agreements/school-transfer/extract",
            headers=env.auth("school"),
            json={"filters": {"student_number": {"eq": student}}},
        )
    assert response.status_code == 200, response.text
    return response.headers["x-disclosure-id"]


# -- the catalog ------------------------------------------------------------------------------------------------------
_CATALOG = """\
datasets:
  kids:
    table: kids
    subject_key: child_id
    subject_aliases: {aliases}
    columns:
      child_id:    {{type: string, class: direct_identifier}}
      national_id: {{type: string, class: direct_identifier, format: resident_id}}
      birth_year:  {{type: integer, class: quasi_identifier}}
"""


@pytest.mark.parametrize(
    ("aliases", "reason"),
    [
        ("[national_idd]", "subject alias 'national_idd' is not one of the dataset's columns"),
        ("[child_id]", "'child_id' is the subject_key itself, not an alias of it"),
        ("[birth_year]", "subject alias 'birth_year' is a integer column"),
        ("[national_id, national_id]", "subject alias 'national_id' is listed twice"),
        ("national_id", "expected a list"),
    ],
)
def test_a_wrong_alias_fails_at_load_with_file_path_and_reason(aliases: str, reason: str) -> None:
    with pytest.raises(PolicyLoadError) as caught:
        parse_catalog(_CATALOG.format(aliases=aliases), "catalog.yaml")
    message = str(caught.value)
    assert message.startswith("catalog.yaml:") and "datasets.kids.subject_aliases" in message
    assert reason in message


def test_the_demo_catalog_declares_national_id_and_student_number(catalog: Catalog) -> None:
    assert catalog.datasets["children"].subject_aliases == ("national_id", "student_number")
    assert parse_catalog(_CATALOG.format(aliases="[national_id]"), "c.yaml").datasets["kids"].subject_aliases == (
        "national_id",
    )


# -- the canonical form (pure) ----------------------------------------------------------------------------------------
@given(
    body=st.text(alphabet="0123456789", min_size=17, max_size=17),
    check=st.sampled_from("0123456789X"),
    data=st.data(),
)
def test_any_typing_of_an_id_comes_back_to_the_registry_form(body: str, check: str, data: st.DataObject) -> None:
    canonical = body + check
    typed = []
    for c in canonical:
        c = data.draw(st.sampled_from([c, c.lower(), FULL_WIDTH.get(c, c), FULL_WIDTH.get(c.lower(), c)]))
        typed.append(c + data.draw(st.sampled_from(["", "", " ", "\u3000", "\t"])))
    text = data.draw(st.sampled_from(["", " "])) + "".join(typed)
    assert canonical_alias(RESIDENT, text) == canonical
    assert canonical_alias(STUDENT, "g" + text) == "G" + canonical


def test_punctuation_is_not_normalised_away() -> None:
    # A hyphen or a dot is a different identifier, not a typing variant: no near-miss matches.
    assert canonical_alias(RESIDENT, "110101-2019") == "110101-2019"
    assert canonical_alias(RESIDENT, "1101%") == "1101%"


# -- the accounting over HTTP ------------------------------------------------------------------------------------------
async def test_every_alias_and_typing_finds_the_childs_disclosures(env: Env, registry_path: Path) -> None:
    child_id, national_id, student = a_child_with_x(registry_path)
    disclosure_id = await disclose(env, student)
    by_key = await accounting(env, child_id)
    assert by_key.status_code == 200 and by_key.json()["count"] == 1
    assert by_key.json()["disclosures"][0]["id"] == disclosure_id
    spaced = f"{national_id[:6]} {national_id[6:14]} {national_id[14:]}"
    full_width = "".join(FULL_WIDTH.get(c, c) for c in national_id.lower())
    for typed in (national_id, national_id.lower(), spaced, full_width, student, student.lower(), f" {student} "):
        response = await accounting(env, typed)
        assert response.status_code == 200, typed
        assert response.json() == by_key.json(), typed


async def test_near_misses_injections_and_unknown_ids_find_nothing_and_look_alike(
    env: Env, registry_path: Path
) -> None:
    child_id, national_id, student = a_child_with_x(registry_path)
    await disclose(env, student)
    without = await accounting(env, "C99999999")  # shaped like a registry key, no such child
    assert without.status_code == 200 and without.json() == {"disclosures": [], "count": 0}
    for attack in (
        national_id[:-1],  # the ID without its check digit
        national_id[:6] + "%",  # a LIKE wildcard: the lookup is an exact match
        "' OR '1'='1",
        f"{national_id}' --",
        "%",
        "_" * 18,
        student[1:] + "0",
        "G" + national_id[:-1] + "0",
    ):
        response = await accounting(env, attack)
        assert response.status_code == 200, attack
        # An identifier that names no child reads exactly like a child without disclosures.
        assert response.json() == without.json(), attack
    assert (await accounting(env, child_id)).json()["count"] == 1


async def test_only_compliance_may_ask_and_the_alias_is_neither_stored_nor_logged(
    env: Env, registry_path: Path
) -> None:
    _child_id, national_id, student = a_child_with_x(registry_path)
    await disclose(env, student)
    for who in ("admin", "research", "school"):
        refused = await accounting(env, national_id, who)
        assert refused.status_code == 403 and national_id not in refused.text
    assert (await accounting(env, national_id.lower())).json()["count"] == 1
    log_of(env).checkpoint()
    env.flush()
    # Nothing in the gateway database holds the national ID (the school's own request stored the student number's
    # filter in the log, so only the national ID, which it never sent, is searched).
    with env.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                text = " ".join(str(v) for v in row)
                assert national_id not in text and national_id.lower() not in text, table.name


@pytest.fixture
def twin_env(catalog: Catalog, registry_path: Path, tmp_path: Path) -> Iterator[tuple[Env, str, str]]:
    """A registry copy in which one child's student number was entered as another child's national ID (the registry
    keeps each column unique, not the two together): that identifier names two children."""
    copy = tmp_path / "registry.db"
    shutil.copy(registry_path, copy)
    conn = sqlite3.connect(copy)
    try:
        first, second = conn.execute(
            "SELECT child_id, national_id FROM child_registry WHERE status = 'enrolled' ORDER BY child_id LIMIT 2"
        ).fetchall()
        conn.execute("UPDATE children SET student_number = ? WHERE child_id = ?", (first[1], second[0]))
        conn.commit()
    finally:
        conn.close()
    environment = build_env(catalog, sqlite_url(tmp_path / "gateway.db"), sqlite_url(copy))
    yield environment, str(first[1]), str(first[0])
    environment.services.close()
    environment.engine.dispose()


async def test_an_identifier_naming_two_children_is_a_clear_409(twin_env: tuple[Env, str, str]) -> None:
    env, national_id, child_id = twin_env
    response = await accounting(env, national_id)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/subject-ambiguous") and "more than one child" in body["detail"]
    assert "by national_id, student_number" in body["detail"]
    assert national_id not in response.text and child_id not in response.text
    # The registry key itself stays unambiguous.
    assert (await accounting(env, child_id)).status_code == 200
    async with signed_in(env) as client:
        form = await client.get("/ui/subjects")
        page = await client.post(
            "/ui/subjects", data={"csrf_token": csrf(form.text), "subject_id": national_id}, headers=SAME_ORIGIN
        )
    assert page.status_code == 409 and "more than one child" in page.text and national_id not in page.text


async def test_the_dashboard_looks_a_child_up_by_national_id(env: Env, registry_path: Path) -> None:
    child_id, national_id, student = a_child_with_x(registry_path)
    await disclose(env, student)
    async with signed_in(env) as client:
        form = await client.get("/ui/subjects")
        assert "registry id, national ID or student number" in form.text
        pages = {}
        for typed in (child_id, national_id.lower(), student):
            response = await client.post(
                "/ui/subjects", data={"csrf_token": csrf(form.text), "subject_id": typed}, headers=SAME_ORIGIN
            )
            assert response.status_code == 200
            pages[typed] = response.text[response.text.index('id="accounting"') :]
    assert len(set(pages.values())) == 1  # the same table whichever identifier was typed
    assert "1 disclosure included this child" in pages[child_id] and "receiving-school" in pages[child_id]
    by_national = pages[national_id.lower()]
    assert national_id not in by_national and national_id.lower() not in by_national
