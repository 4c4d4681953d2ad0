"""Attack: a party with database access approves its own re-identification request in the tables.

Two approvers (neither the requester) must approve a re-identification; their approvals are rows of
``reidentification_approvals`` and the request's ``state``, which anyone with database access can write. The signed
log holds ``reidentification.approved`` entries for the real approvals. The answer (the ids behind the tokens) must
be given only when the log records two distinct approvers other than the requester.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import activate, events, use_store
from tests.gateway.test_extract_http import assert_problem
from tests.gateway.test_reidentification import REIDENTIFIABLE, ask, grant, in_scope_children, tokens_of

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("how", ["state only", "two approval rows", "one real, one forged"])
async def test_approvals_written_into_the_tables_release_nothing(env: Env, registry_path: Path, how: str) -> None:
    use_store(env)
    ids = in_scope_children(registry_path, 2)
    async with env.client() as client:
        await activate(client, env, REIDENTIFIABLE)
        created = await ask(client, env, tokens_of(env, ids))
        rid = created.json()["id"]
        now = env.services.clock()
        if how == "one real, one forged":
            assert (await grant(client, env, rid, "approver")).status_code == 200
        with env.engine.begin() as conn:
            if how != "state only":
                for who in ("approver-wang",) if how == "one real, one forged" else ("approver-li", "approver-wang"):
                    conn.execute(
                        sa.text(
                            "INSERT INTO reidentification_approvals (request_id, approver, approved_at) "
                            "VALUES (:r, :a, :t)"
                        ),
                        {"r": rid, "a": who, "t": now},
                    )
            conn.execute(sa.text("UPDATE reidentification_requests SET state = 'approved' WHERE id = :r"), {"r": rid})
        answer = await client.get(f"/v1/reidentifications/{rid}", headers=env.auth("research"))
    assert_problem(answer, 409, "second-person-required")
    assert not any(i in answer.text for i in ids)
    assert not events(env, "reidentification.completed") and not events(env, "disclosure.started")
