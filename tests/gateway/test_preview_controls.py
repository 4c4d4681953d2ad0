"""Previews of agreement versions: real registry rows only under a version a second person approved, and then
counted against the agreement's rows per day and logged like a release; nothing under an agreement that ended.
(Drafts: synthetic rows, refused with lint errors — tests/gateway/test_agreement_lifecycle.py.)"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import RESEARCH, activate, disclosure_count, set_state, use_store
from tests.gateway.test_extract_http import assert_problem

pytestmark = pytest.mark.anyio
URL = "/v1/admin/agreements/research-continuity/versions/1/preview"
EXTRACT = "/v1/agreements/research-continuity/extract"
LIMITED = RESEARCH.replace("rows_per_day: 20000000", "rows_per_day: 7")


def indexed(env: Env, disclosure_id: str) -> int:
    env.flush()
    with env.engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT COUNT(*) FROM subject_index s JOIN disclosures d ON d.start_seq = s.disclosure_seq "
                    "WHERE d.id = :d"
                ),
                {"d": disclosure_id},
            ).scalar_one()
        )


async def test_real_preview_rows_count_against_the_rows_per_day_and_are_disclosures(env: Env) -> None:
    assert LIMITED != RESEARCH
    use_store(env)
    async with env.client() as client:
        await activate(client, env, LIMITED)
        first = await client.get(URL, headers=env.auth("admin"))
        assert first.status_code == 200, first.text
        assert len(first.json()["samples"]) == 5
        assert not any("synthetic" in n for n in first.json()["notes"])  # an approved version: real rows
        entry = env.disclosure(first.headers["x-disclosure-id"])
        assert entry["operation"] == "preview" and entry["rows"] == 5 and entry["principal"] == "registry-admin"
        assert indexed(env, entry["id"]) == 5  # in every child's accounting of disclosures
        # 2 rows left today: the next preview shows 2, then the quota refuses before anything is logged.
        second = await client.get(URL, headers=env.auth("approver"))
        assert second.status_code == 200 and len(second.json()["samples"]) == 2
        before = disclosure_count(env)
        refused = await client.get(URL, headers=env.auth("admin"))
        assert_problem(refused, 429, "rate-limited")
        assert refused.headers["retry-after"].isdigit()
        assert disclosure_count(env) == before
        # The parties' own quota is the same one: previews used it up.
        assert_problem(await client.post(EXTRACT, headers=env.auth("research"), json={"limit": 1}), 429)


async def test_no_preview_under_an_agreement_that_ended(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        assert (await set_state(client, env, "research-continuity", "revoked")).status_code == 200
        before = disclosure_count(env)
        for who in ("admin", "approver"):
            assert_problem(await client.get(URL, headers=env.auth(who)), 409, "agreement-ended")
    assert disclosure_count(env) == before
