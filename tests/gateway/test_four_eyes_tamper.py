"""Attack: an approver with database access approves their own draft by rewriting ``agreement_versions.author``.

The four-eyes check of approval compares the approver with the stored version's ``author``, a column the database
operator (security.md) can edit; the draft's author is also in the signed log (the ``agreement.state_changed`` entry
``to: draft``, with the version's digest). Before the fix, ``admin2`` (admin and approver) applied a draft, set its
author to ``registry-admin`` and approved it alone: it went active. Now approval and risk acceptance read the author
from the log entry that made the draft, for the digest stored; a draft that entry does not record is refused.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import RESEARCH, apply, approve, use_store
from tests.gateway.test_extract_http import assert_problem

pytestmark = pytest.mark.anyio
WHERE = "WHERE agreement_id = 'research-continuity' AND version = 1"


def _state(env: Env) -> str:
    with env.engine.connect() as conn:
        return str(conn.execute(sa.text(f"SELECT state FROM agreement_versions {WHERE}")).scalar_one())  # noqa: S608 - a constant


def _edit(env: Env, **values: str) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    with env.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE agreement_versions SET {sets} {WHERE}"), values)  # noqa: S608 - test columns


async def test_rewriting_the_author_does_not_let_the_author_approve(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, RESEARCH, who="admin2")).status_code == 201
        assert_problem(await approve(client, env, "research-continuity", 1, "admin2"), 403, "four-eyes")
        _edit(env, author="registry-admin")
        refused = await approve(client, env, "research-continuity", 1, "admin2")
        assert_problem(refused, 403, "four-eyes")
        assert _state(env) == "draft"
        # The honest path still works: another approver approves the same draft.
        done = await approve(client, env, "research-continuity", 1, "approver")
    assert done.status_code == 200, done.text
    assert _state(env) == "active"


async def test_a_draft_whose_digest_was_rewritten_is_not_approved(env: Env) -> None:
    """(Held before the fix too: the stored text no longer matches the digest.)"""
    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, RESEARCH)).status_code == 201
        _edit(env, digest="sha256:" + "0" * 64)
        refused = await approve(client, env, "research-continuity", 1, "approver")
        assert_problem(refused, 409, "invalid-agreement")
    assert _state(env) == "draft"


async def test_a_second_risk_acceptance_written_into_the_table_does_not_count(env: Env) -> None:
    """One approver accepts a risk above threshold, then writes the second approver's acceptance row by hand."""
    from tests.gateway.test_risk_acceptance import RISKY, accept

    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, RISKY)).status_code == 201
        first = await accept(client, env, "approver", reason="IRB approved (PKU-IRB-2026-17)")
        assert first.status_code == 201, first.text
        with env.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO agreement_risk_acceptances (agreement_id, version, approver, reason, figures,"
                    " accepted_at) SELECT agreement_id, version, 'approver-wang', 'forged', figures, accepted_at"
                    " FROM agreement_risk_acceptances WHERE approver = 'approver-li'"
                )
            )
        refused = await approve(client, env, "research-continuity", 1, "approver")
        body = assert_problem(refused, 409, "risk-above-threshold")
        assert [a["by"] for a in body["risk"]["acceptances"]] == ["approver-li"]
        assert _state(env) == "draft"
