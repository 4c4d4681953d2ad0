"""Re-identification under dual control: two distinct approvers, one logged answer, and nothing after shredding."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.controls.reidentify import reverse_tokens
from gateway.keysource import agreement_owner, domain_owner
from keys import KeyDestroyedError, KeyRing
from tests.conftest import TODAY
from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import (
    REIDENTIFIABLE,
    RESEARCH,
    activate,
    events,
    set_state,
    use_store,
    wrapped_owners,
)
from tests.gateway.test_extract_http import assert_problem, ndjson
from transforms import HmacSha256, token

pytestmark = pytest.mark.anyio
AGREEMENT = "research-continuity"
FAKE = "A" * 22  # the shape of a token, but no child's


def in_scope_children(registry: Path, n: int) -> list[str]:
    conn = sqlite3.connect(registry)
    try:
        rows = conn.execute(
            "SELECT child_id FROM child_registry WHERE status IN ('enrolled','transferred_out','graduated') "
            "ORDER BY child_id LIMIT ?",
            (n,),
        ).fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


def tokens_of(env: Env, ids: list[str], *, version: int | None = None) -> list[str]:
    key = env.services.keyring.derive(domain_owner("pku-study"), "tokenize", version=version).reveal()
    return [token(HmacSha256(key), i) for i in ids]


async def released_tokens(client: httpx.AsyncClient, env: Env) -> set[str]:
    response = await client.post(
        f"/v1/agreements/{AGREEMENT}/extract", headers=env.auth("research"), json={"fields": ["child_id"]}
    )
    assert response.status_code == 200, response.text
    return {r["child_id"] for r in ndjson(response)}


async def ask(client: httpx.AsyncClient, env: Env, tokens: list[str], who: str = "research", **extra: Any) -> Any:
    body = {"field": "child_id", "tokens": tokens, "reason": "child flagged for follow-up by the study", **extra}
    return await client.post(f"/v1/agreements/{AGREEMENT}/reidentify", headers=env.auth(who), json=body)


async def grant(client: httpx.AsyncClient, env: Env, rid: str, who: str) -> httpx.Response:
    return await client.post(f"/v1/admin/reidentifications/{rid}/approve", headers=env.auth(who))


async def test_dual_control_end_to_end(env: Env, registry_path: Path) -> None:
    use_store(env)
    ids = in_scope_children(registry_path, 3)
    async with env.client() as client:
        await activate(client, env, REIDENTIFIABLE)
        released = await released_tokens(client, env)
        wanted = tokens_of(env, ids)
        assert set(wanted) <= released  # the party holds exactly these tokens
        created = await ask(client, env, [*wanted, FAKE])
        assert created.status_code == 202, created.text
        rid = created.json()["id"]
        assert created.headers["location"] == f"/v1/reidentifications/{rid}"
        assert created.json()["state"] == "pending" and created.json()["approvals_needed"] == 2
        url = f"/v1/reidentifications/{rid}"
        pending = await client.get(url, headers=env.auth("research"))
        assert pending.json()["state"] == "pending" and "found" not in pending.json()
        assert_problem(await grant(client, env, rid, "research"), 403, "role-required")
        assert_problem(await grant(client, env, rid, "admin"), 403, "role-required")
        one = await grant(client, env, rid, "approver")
        assert (
            one.status_code == 200 and one.json()["state"] == "pending" and one.json()["approvals"] == ["approver-li"]
        )
        assert_problem(await grant(client, env, rid, "approver"), 409, "already-approved")  # two DISTINCT approvers
        assert (await client.get(url, headers=env.auth("research"))).json()["state"] == "pending"
        two = await grant(client, env, rid, "approver2")
        assert two.json()["state"] == "approved"
        oversight = await client.get(url, headers=env.auth("compliance"))
        assert oversight.status_code == 200 and "found" not in oversight.json()  # the state, never the answer
        assert_problem(await client.get(url, headers=env.auth("school")), 404)
        listing = await client.get("/v1/admin/reidentifications?state=approved", headers=env.auth("approver"))
        assert [r["id"] for r in listing.json()["reidentifications"]] == [rid]
        answer = await client.get(url, headers=env.auth("research"))
        assert answer.status_code == 200, answer.text
        again = await client.get(url, headers=env.auth("research"))
        subject = await client.post(
            "/v1/subjects/disclosures", headers=env.auth("compliance"), json={"subject_id": ids[0]}
        )
    body = answer.json()
    assert body["found"] == dict(zip(wanted, ids, strict=True))  # only the ids asked for
    assert body["not_found"] == [FAKE]
    assert_problem(again, 410, "already-fetched")
    entry = env.disclosure(answer.headers["x-disclosure-id"])
    assert entry["operation"] == "reidentify" and entry["rows"] == 3 and entry["principal"] == "pku-education-lab"
    plan = json.loads(entry["plan"])
    assert plan["tokens"] == 4 and plan["approvers"] == ["approver-li", "approver-wang"]
    assert ids[0] not in entry["plan"]  # the log names no child
    assert answer.headers["x-disclosure-id"] in json.dumps(subject.json())  # subject-indexed
    (requested,) = events(env, "reidentification.requested")
    assert "reason" not in requested and len(requested["reason_sha256"]) == 64
    assert [e["approver"] for e in events(env, "reidentification.approved")] == ["approver-li", "approver-wang"]
    with env.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT tokens, state FROM reidentification_requests")).one()
    assert stored == ("[]", "completed")  # the tokens are not kept once answered


async def test_the_requester_cannot_approve_their_own_request(env: Env) -> None:
    use_store(env)
    both = REIDENTIFIABLE.replace("parties: [pku-education-lab]", "parties: [pku-education-lab, registry-admin-2]")
    async with env.client() as client:
        await activate(client, env, both)
        created = await ask(client, env, [FAKE], who="admin2")
        assert created.status_code == 202
        refused = await grant(client, env, created.json()["id"], "admin2")
    assert_problem(refused, 403, "four-eyes")


async def test_refusals(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)  # does not allow re-identification
        assert_problem(await ask(client, env, [FAKE]), 403, "reidentification-not-allowed")
        await activate(client, env, REIDENTIFIABLE.replace("version: 1", "version: 2"))
        assert_problem(await ask(client, env, [FAKE], field="kindergarten_id"), 422, "field-not-reidentifiable")
        assert_problem(await ask(client, env, ["bad token!"]), 422, "invalid-tokens")
        assert_problem(await ask(client, env, []), 422, "invalid-tokens")
        assert_problem(await ask(client, env, [FAKE], reason="because"), 422, "reason-required")
        assert_problem(await ask(client, env, [FAKE], who="school"), 403, "not-a-party")
        unknown = await client.get("/v1/reidentifications/nosuchrequest", headers=env.auth("research"))
        assert_problem(unknown, 404)


async def test_tokens_from_before_a_key_rotation_are_still_reversed(env: Env, registry_path: Path) -> None:
    use_store(env)
    (child,) = in_scope_children(registry_path, 1)
    async with env.client() as client:
        await activate(client, env, REIDENTIFIABLE)
        before = await released_tokens(client, env)
        env.services.keyring.rotate(domain_owner("pku-study"))
        after = await released_tokens(client, env)
        assert before.isdisjoint(after)  # a rotation changes every token
        old, new = tokens_of(env, [child], version=1)[0], tokens_of(env, [child], version=2)[0]
        assert old in before and new in after
        rid = (await ask(client, env, [old, new])).json()["id"]
        await grant(client, env, rid, "approver")
        await grant(client, env, rid, "approver2")
        answer = await client.get(f"/v1/reidentifications/{rid}", headers=env.auth("research"))
    assert answer.json()["found"] == {old: child, new: child}


async def test_revoked_agreement_tokens_cannot_be_reversed_even_with_database_access(
    env: Env, registry_path: Path
) -> None:
    use_store(env)
    ids = in_scope_children(registry_path, 2)
    async with env.client() as client:
        await activate(client, env, REIDENTIFIABLE)
        await released_tokens(client, env)
        wanted = tokens_of(env, ids)
        rid = (await ask(client, env, wanted)).json()["id"]
        await grant(client, env, rid, "approver")
        await grant(client, env, rid, "approver2")
        agreement = env.services.agreements[AGREEMENT]
        assert (await set_state(client, env, AGREEMENT, "revoked")).status_code == 200
        answer = await client.get(f"/v1/reidentifications/{rid}", headers=env.auth("research"))
    assert_problem(answer, 403, "agreement-revoked")
    # An administrator with the database and the master key: the wrapped key rows are gone...
    assert not {agreement_owner(AGREEMENT), domain_owner("pku-study")} & wrapped_owners(env)
    with env.engine.connect() as conn:
        tombstones = {r[0] for r in conn.execute(sa.text("SELECT owner FROM key_tombstones"))}
    assert {agreement_owner(AGREEMENT), domain_owner("pku-study")} <= tombstones
    # ...a fresh key ring over them refuses instead of making a new key...
    ring = KeyRing(env.services.keyring.master, env.services.keyring.store)
    with pytest.raises(KeyDestroyedError):
        ring.current(domain_owner("pku-study"))
    # ...and reversal itself, run directly with the agreement as it was, fails.
    with pytest.raises(KeyDestroyedError):
        reverse_tokens(agreement, "child_id", wanted, ring=ring, connector=env.services.connector, today=TODAY)
