"""Dual control over HTTP and in the domain: revoking (keys destroyed), resuming, rotating the master key each need
two distinct principals; one insider alone, the requester confirming their own request, a wrong role, an expired
request and a replayed confirmation all fail, and nothing changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.agreements.lifecycle import SecondPersonRequiredError
from gateway.auth import Principal, PrincipalStore
from gateway.errors import AuditUnavailableError
from gateway.keysource import domain_owner
from policies.dual_control import PendingAction
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
from tests.gateway.test_extract_http import assert_problem

pytestmark = pytest.mark.anyio
AGREEMENT = "research-continuity"
EXTRACT = f"/v1/agreements/{AGREEMENT}/extract"


def state_of(env: Env) -> list[tuple[int, str]]:
    with env.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT version, state FROM agreement_versions WHERE agreement_id = :a ORDER BY version"),
            {"a": AGREEMENT},
        )
        return [(int(v), str(s)) for v, s in rows]


def pending_rows(env: Env) -> list[dict[str, Any]]:
    with env.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM pending_actions ORDER BY requested_at"))]


async def extract_status(env: Env) -> int:
    async with env.client() as client:
        response = await client.post(EXTRACT, headers=env.auth("research"), json={"limit": 3})
    return response.status_code


async def test_one_admin_alone_cannot_revoke_and_destroy_the_keys(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        assert await extract_status(env) == 200  # the domain key exists now
        requested = await set_state(client, env, AGREEMENT, "revoked", reason="study ended", confirm_by=None)
        assert requested.status_code == 202, requested.text
        action = requested.json()
        assert action["state"] == "pending" and action["action"] == "agreement.revoke"
        assert action["requested_by"] == "registry-admin" and action["confirm_roles"] == ["admin", "approver"]
        # Nothing happened: the agreement serves, its keys are there.
        assert state_of(env) == [(1, "active")] and await extract_status(env) == 200
        assert domain_owner("pku-study") in wrapped_owners(env)
        # The requester confirming their own request: refused (four eyes), whatever path.
        assert_problem(await confirm_action(client, env, action["id"], "admin"), 403, "four-eyes")
        # Roles that may not confirm a revocation: a party, a compliance officer.
        assert_problem(await confirm_action(client, env, action["id"], "compliance"), 403, "role-required")
        assert_problem(await confirm_action(client, env, action["id"], "research"), 403, "role-required")
        assert state_of(env) == [(1, "active")] and domain_owner("pku-study") in wrapped_owners(env)
        # A second, distinct principal: it runs.
        done = await confirm_action(client, env, action["id"], "admin2")
        assert done.status_code == 200, done.text
        body = done.json()
        assert body["state"] == "executed" and body["confirmed_by"] == "registry-admin-2"
        assert body["agreement"]["state"] == "revoked"
        # A replayed confirmation (same or another principal) is refused; nothing runs twice.
        assert_problem(await confirm_action(client, env, action["id"], "admin2"), 409, "action-not-pending")
        assert_problem(await confirm_action(client, env, action["id"], "approver"), 409, "action-not-pending")
    assert domain_owner("pku-study") not in wrapped_owners(env)
    (asked,) = events(env, "action.requested")
    (confirmed,) = events(env, "action.confirmed")
    assert asked["by"] == "registry-admin" and asked["reason"] == "study ended" and asked["action_id"] == action["id"]
    assert confirmed["by"] == "registry-admin-2" and confirmed["requested_by"] == "registry-admin"
    change = next(e for e in events(env, "agreement.state_changed") if e["to"] == "revoked")
    assert change["dual_control"] == {
        "action_id": action["id"],
        "requested_by": "registry-admin",
        "confirmed_by": "registry-admin-2",
    }
    assert len(events(env, "keys.destroyed")) == 1


async def test_resuming_needs_an_approver_other_than_the_requester(env: Env) -> None:
    use_store(env)
    store = env.services.authenticator
    assert isinstance(store, PrincipalStore)
    env.keys["admin3"] = store.create("registry-admin-3", {"admin"})
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        # Suspending stops releases and can be undone: one admin does it alone.
        suspended = await set_state(client, env, AGREEMENT, "suspended", reason="audit")
        assert suspended.status_code == 200 and suspended.json()["state"] == "suspended"
        requested = await set_state(client, env, AGREEMENT, "active", confirm_by=None)
        assert requested.status_code == 202 and requested.json()["action"] == "agreement.resume"
        action_id = requested.json()["id"]
        assert await extract_status(env) == 403  # still suspended
        assert_problem(await confirm_action(client, env, action_id, "admin3"), 403, "role-required")  # a 2nd admin
        assert_problem(await confirm_action(client, env, action_id, "admin"), 403, "four-eyes")
        assert state_of(env) == [(1, "suspended")]
        done = await confirm_action(client, env, action_id, "approver")
        assert done.status_code == 200 and done.json()["agreement"]["state"] == "active"
    assert await extract_status(env) == 200


async def test_an_expired_request_cannot_be_confirmed(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        requested = await set_state(client, env, AGREEMENT, "revoked", confirm_by=None)
        action_id = requested.json()["id"]
        start = env.services.clock()
        env.services.clock = lambda: start + dt.timedelta(hours=24, seconds=1)
        assert_problem(await confirm_action(client, env, action_id, "admin2"), 409, "action-expired")
        listed = await client.get("/v1/admin/actions", headers=env.auth("compliance"))
    assert listed.status_code == 200 and listed.json()["actions"][0]["state"] == "expired"
    assert state_of(env) == [(1, "active")] and not events(env, "action.confirmed")


async def test_a_revoked_agreement_is_never_reactivated(env: Env) -> None:
    """Decided: revocation destroyed the keys, so there is nothing to reactivate. Refused at the request (409),
    before any second person is asked; a new agreement with a new id is the way back."""
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        assert (await set_state(client, env, AGREEMENT, "revoked")).status_code == 200
        before = len(pending_rows(env))
        assert_problem(await set_state(client, env, AGREEMENT, "active", confirm_by=None), 409, "invalid-transition")
        direct = await client.post(
            "/v1/admin/actions",
            headers=env.auth("admin"),
            json={"action": "agreement.resume", "agreement_id": AGREEMENT},
        )
        assert_problem(direct, 409, "invalid-transition")
    assert len(pending_rows(env)) == before and state_of(env) == [(1, "revoked")]


async def test_only_an_admin_requests_and_unknown_actions_are_refused(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        body = {"action": "agreement.revoke", "agreement_id": AGREEMENT}
        for who in ("approver", "compliance", "research"):
            response = await client.post("/v1/admin/actions", headers=env.auth(who), json=body)
            assert_problem(response, 403, "role-required")
        unknown = await client.post("/v1/admin/actions", headers=env.auth("admin"), json={"action": "keys.wipe"})
        assert_problem(unknown, 422, "unknown-action")
        missing = await confirm_action(client, env, "0" * 32, "admin2")
        assert_problem(missing, 404)
    assert pending_rows(env) == []


async def test_the_domain_has_no_side_door(env: Env) -> None:
    """Code that calls the lifecycle directly (CLI, demo, a future route) cannot revoke or resume alone either."""
    use_store(env)
    lifecycle = env.services.lifecycle
    assert lifecycle is not None
    admin = Principal("registry-admin", frozenset({"admin", "approver"}))
    async with env.client() as client:
        await activate(client, env, RESEARCH)
    with pytest.raises(SecondPersonRequiredError):
        lifecycle.set_state(AGREEMENT, "revoked", by=admin)
    now = env.services.clock()
    forged = PendingAction(
        "f" * 32,
        "agreement.revoke",
        AGREEMENT,
        None,
        "registry-admin",
        now,
        now,
        "confirmed",
        confirmed_by="registry-admin",
    )
    with pytest.raises(SecondPersonRequiredError):
        lifecycle.set_state(AGREEMENT, "revoked", by=admin, confirmation=forged)
    pending = PendingAction("f" * 32, "agreement.revoke", AGREEMENT, None, "registry-admin", now, now)
    with pytest.raises(SecondPersonRequiredError):
        lifecycle.set_state(AGREEMENT, "revoked", by=admin, confirmation=pending)
    other = PendingAction("f" * 32, "agreement.revoke", "other-study", None, "a", now, now, "confirmed", "b")
    with pytest.raises(SecondPersonRequiredError):
        lifecycle.set_state(AGREEMENT, "revoked", by=admin, confirmation=other)
    assert state_of(env) == [(1, "active")]


async def test_a_confirmation_that_cannot_be_logged_changes_nothing(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        requested = await set_state(client, env, AGREEMENT, "revoked", confirm_by=None)
        action_id = requested.json()["id"]
        real = env.services.log.append_event

        def broken(entry: Any) -> int:
            raise AuditUnavailableError("the disclosure log cannot be written")

        monkeypatch.setattr(env.services.log, "append_event", broken)
        assert_problem(await confirm_action(client, env, action_id, "admin2"), 503)
        assert_problem(await set_state(client, env, AGREEMENT, "revoked", confirm_by=None), 503)
        monkeypatch.setattr(env.services.log, "append_event", real)
        assert [r["state"] for r in pending_rows(env)] == ["pending"]  # the request waits, unconfirmed
        assert state_of(env) == [(1, "active")]
        assert (await confirm_action(client, env, action_id, "admin2")).status_code == 200
    assert state_of(env) == [(1, "revoked")]


async def test_two_confirmations_at_once_run_the_action_once(env: Env) -> None:
    import anyio

    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        requested = await set_state(client, env, AGREEMENT, "revoked", confirm_by=None)
        action_id = requested.json()["id"]
        statuses: list[int] = []

        async def confirm_as(who: str) -> None:
            statuses.append((await confirm_action(client, env, action_id, who)).status_code)

        async with anyio.create_task_group() as group:
            for who in ("admin2", "approver", "approver2"):
                group.start_soon(confirm_as, who)
    assert sorted(statuses) == [200, 409, 409]
    assert len(events(env, "action.confirmed")) == 1 and len(events(env, "keys.destroyed")) == 1
