"""Attack: one admin with database access confirms their own dual-control request by editing ``pending_actions``.

The confirmation's four-eyes check compares the confirmer with the row's ``requested_by``; the row is in the
gateway database, which the database operator (security.md) can edit. Before the fix, an admin who requested a
revocation, rewrote ``requested_by`` to a colleague's name and confirmed it themselves revoked the agreement and
destroyed its keys alone; a row written by hand with no ``action.requested`` entry in the signed log was confirmed
and ran likewise. Now a confirmation first checks the row against its ``action.requested`` entry in the signed log
(requester, action, agreement, reason, expiry); any difference is a 409 and nothing runs.
"""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
import sqlalchemy as sa

from gateway.keysource import domain_owner
from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import (
    RESEARCH,
    activate,
    confirm_action,
    events,
    set_state,
    use_store,
    wrapped_owners,
)
from tests.gateway.test_dual_control import AGREEMENT, extract_status, pending_rows, state_of
from tests.gateway.test_extract_http import assert_problem

pytestmark = pytest.mark.anyio


def _edit(env: Env, action_id: str, **values: object) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    with env.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE pending_actions SET {sets} WHERE id = :id"), {"id": action_id, **values})  # noqa: S608 - test column names


async def _untouched(env: Env) -> None:
    assert state_of(env) == [(1, "active")] and await extract_status(env) == 200
    assert domain_owner("pku-study") in wrapped_owners(env)
    assert all(e.get("to") != "revoked" for e in events(env, "agreement.state_changed"))


async def test_rewriting_the_requester_does_not_let_the_requester_confirm(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        requested = await set_state(client, env, AGREEMENT, "revoked", reason="study ended", confirm_by=None)
        action_id = requested.json()["id"]
        assert_problem(await confirm_action(client, env, action_id, "admin"), 403, "four-eyes")
        _edit(env, action_id, requested_by="registry-admin-2")  # the colleague's name, in the table only
        refused = await confirm_action(client, env, action_id, "admin")
        assert_problem(refused, 409, "second-person-required")
        assert "registry-admin-2" not in refused.text  # the detail names no principal
        await _untouched(env)
        assert not events(env, "action.confirmed")
        assert pending_rows(env)[0]["state"] == "pending"


async def test_a_request_written_into_the_table_by_hand_runs_nothing(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        now = env.services.clock()
        forged = secrets.token_hex(16)
        with env.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO pending_actions (id, action, target, reason, requested_by, requested_at, expires_at,"
                    " state) VALUES (:id, 'agreement.revoke', :t, NULL, 'registry-admin-2', :r, :e, 'pending')"
                ),
                {"id": forged, "t": AGREEMENT, "r": now, "e": now + dt.timedelta(hours=1)},
            )
        assert_problem(await confirm_action(client, env, forged, "admin"), 409, "second-person-required")
        await _untouched(env)
        assert not events(env, "action.confirmed")


async def test_an_expiry_pushed_back_in_the_table_is_still_expired(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        requested = await set_state(client, env, AGREEMENT, "revoked", confirm_by=None)
        action_id = requested.json()["id"]
        start = env.services.clock()
        env.services.clock = lambda: start + dt.timedelta(hours=30)
        _edit(env, action_id, expires_at=start + dt.timedelta(hours=48))
        refused = await confirm_action(client, env, action_id, "admin2")
        assert_problem(refused, 409, "second-person-required")
        await _untouched(env)


async def test_an_untouched_request_is_still_confirmed_by_a_second_person(env: Env) -> None:
    """The check must not refuse the honest path (and a row as the gateway wrote it matches its entry)."""
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        requested = await set_state(client, env, AGREEMENT, "revoked", reason="study ended", confirm_by=None)
        done = await confirm_action(client, env, requested.json()["id"], "admin2")
    assert done.status_code == 200, done.text
    assert state_of(env) == [(1, "revoked")]
