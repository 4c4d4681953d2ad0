"""Helpers for lifecycle tests: a harness env whose agreements live in the database store, approvers, shortcuts."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from gateway.agreements.lifecycle import AgreementLifecycle
from gateway.agreements.risk import risk_meter
from gateway.agreements.store import AgreementRegistry, AgreementStore
from gateway.auth import PrincipalStore
from tests.conftest import coarse_research, demo_agreement_texts
from tests.gateway.harness import Env

APPROVERS = {"approver": "approver-li", "approver2": "approver-wang"}
TEXTS = demo_agreement_texts()


RESEARCH = coarse_research()
REIDENTIFIABLE = RESEARCH + "reidentification: {allowed: true, fields: [child_id]}\n"


def within_threshold(_agreement: Any) -> dict[str, Any]:
    """A risk meter for lifecycles without a registry: every version measures as safe (smallest class 10)."""
    return {
        "records": 100,
        "smallest_class": 10,
        "unique_records": 0,
        "unique_share": 0.0,
        "prosecutor_risk": {"max": 0.1},
        "journalist_risk": {"max": 0.1},
        "computed_on": "2026-11-28",
    }


def use_store(env: Env) -> AgreementRegistry:
    """Replace the harness's dict of agreements by the database-backed registry (re-read on every access)."""
    services = env.services
    registry = AgreementRegistry(AgreementStore(env.engine), services.catalog, ttl=0.0, today=services.today)
    services.agreements = registry
    meter = risk_meter(services.connector, services.keyring, services.today)
    services.lifecycle = AgreementLifecycle(
        registry, services.log, services.keyring, clock=services.clock, risk=meter
    ).attach()
    store = services.authenticator
    assert isinstance(store, PrincipalStore)
    for alias, name in APPROVERS.items():
        env.keys[alias] = store.create(name, {"approver"})
    env.keys["admin2"] = store.create("registry-admin-2", {"admin", "approver"})
    return registry


async def apply(client: httpx.AsyncClient, env: Env, text: str, who: str = "admin") -> httpx.Response:
    return await client.post(
        "/v1/admin/agreements", headers={**env.auth(who), "Content-Type": "application/yaml"}, content=text
    )


async def approve(client: httpx.AsyncClient, env: Env, agreement_id: str, version: int, who: str) -> httpx.Response:
    return await client.post(f"/v1/admin/agreements/{agreement_id}/versions/{version}/approve", headers=env.auth(who))


async def set_state(
    client: httpx.AsyncClient,
    env: Env,
    agreement_id: str,
    state: str,
    who: str = "admin",
    reason: str | None = None,
    confirm_by: str | None = "approver",
) -> httpx.Response:
    """Change the state; a revocation or resumption (requested, 202) is confirmed by ``confirm_by`` (None: not)."""
    body: dict[str, Any] = {"state": state}
    if reason is not None:
        body["reason"] = reason
    response = await client.post(f"/v1/admin/agreements/{agreement_id}/state", headers=env.auth(who), json=body)
    if response.status_code != 202 or confirm_by is None:
        return response
    confirmed = await confirm_action(client, env, response.json()["id"], confirm_by)
    if confirmed.status_code != 200:
        return confirmed
    # What the state change answered before dual control: the changed version.
    return httpx.Response(200, json=confirmed.json()["agreement"], request=confirmed.request)


async def confirm_action(client: httpx.AsyncClient, env: Env, action_id: str, who: str) -> httpx.Response:
    return await client.post(f"/v1/admin/actions/{action_id}/confirm", headers=env.auth(who))


async def activate(client: httpx.AsyncClient, env: Env, text: str) -> dict[str, Any]:
    """Apply as admin and approve as approver: the version is active."""
    applied = await apply(client, env, text)
    assert applied.status_code == 201, applied.text
    body = applied.json()
    approved = await approve(client, env, body["agreement_id"], body["version"], "approver")
    assert approved.status_code == 200, approved.text
    result: dict[str, Any] = approved.json()
    assert result["state"] == "active"
    return result


def events(env: Env, kind: str) -> list[dict[str, Any]]:
    import json

    return [e for e in (json.loads(b) for b in env.log_bodies()) if e["type"] == kind]


def wrapped_owners(env: Env) -> set[str]:
    with env.engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.text("SELECT owner FROM wrapped_keys"))}


def disclosure_count(env: Env) -> int:
    with env.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT COUNT(*) FROM disclosures")).scalar_one())
