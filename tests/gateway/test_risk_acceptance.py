"""Approval measures the re-identification risk and refuses it above the catalog threshold unless two distinct
approvers accept it with a reason; the acceptance is logged with the approval and with every disclosure after it."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import RESEARCH, apply, approve, events, use_store
from tests.gateway.test_extract_http import assert_problem

pytestmark = pytest.mark.anyio

# Exact birth dates with k = 2: whatever k-anonymity keeps sits in classes of 2 or 3, a prosecutor risk of 1/2, above
# the catalog's 0.2. max_suppression 1 so that its extracts are released (most records withheld) for the log checks.
RISKY = (
    RESEARCH.replace("birth_date:      {generalize: year}", "birth_date:      keep")
    .replace("k: 5", "k: 2")
    .replace("max_suppression: 0.05", "max_suppression: 1")
)
APPROVE_URL = "/v1/admin/agreements/research-continuity/versions/1"


async def accept(client: httpx.AsyncClient, env: Env, who: str, reason: str | None = "ok") -> httpx.Response:
    body: dict[str, Any] = {} if reason is None else {"reason": reason}
    return await client.post(f"{APPROVE_URL}/risk-acceptances", headers=env.auth(who), json=body)


def registry_values(registry: Path) -> set[str]:
    """Every child id and exact birth date of the registry: none may appear in a risk figure."""
    conn = sqlite3.connect(registry)
    try:
        found = conn.execute("SELECT child_id, birth_date, national_id FROM child_registry").fetchall()
    finally:
        conn.close()
    return {str(v) for row in found for v in row if v}


async def test_risk_above_threshold_needs_two_distinct_approvers(env: Env, registry_path: Path) -> None:
    use_store(env)
    async with env.client() as client:
        # admin2 holds admin and approver: as the author it can neither approve nor accept the risk (four eyes).
        assert (await apply(client, env, RISKY, who="admin2")).status_code == 201
        refused = await approve(client, env, "research-continuity", 1, "approver")
        body = assert_problem(refused, 409, "risk-above-threshold")
        risk = body["risk"]
        assert risk["binding"] and risk["exceeds_threshold"] and risk["measured_on"] == "after_k_anonymity"
        assert risk["prosecutor_risk_max"] > 0.2 and risk["threshold"]["max_prosecutor_risk"] == 0.2
        assert risk["acceptances"] == [] and risk["acceptances_needed"] == 2
        # Counts and ratios only: no id or birth date of the registry in the problem body.
        assert not {v for v in registry_values(registry_path) if v in refused.text}

        assert_problem(await accept(client, env, "admin2"), 403, "four-eyes")
        assert_problem(await accept(client, env, "research"), 403, "role-required")
        assert_problem(await accept(client, env, "approver", reason=None), 400)
        assert_problem(await accept(client, env, "approver", reason="   "), 422, "invalid-agreement")

        first = await accept(client, env, "approver", reason="IRB approved the fine birth dates (PKU-IRB-2026-17)")
        assert first.status_code == 201, first.text
        assert [a["by"] for a in first.json()["acceptances"]] == ["approver-li"]
        # One approver alone cannot accept: approval is still refused, and says one of two.
        alone = assert_problem(await approve(client, env, "research-continuity", 1, "approver"), 409)
        assert [a["by"] for a in alone["risk"]["acceptances"]] == ["approver-li"] and "1 of 2" in alone["detail"]
        # The same person twice cannot either.
        assert_problem(await accept(client, env, "approver", reason="again"), 409, "risk-already-accepted")
        assert_problem(await approve(client, env, "research-continuity", 1, "approver"), 409, "risk-above-threshold")

        second = await accept(client, env, "approver2", reason="linkage needs exact dates; recipient audited")
        assert second.status_code == 201, second.text
        assert [a["by"] for a in second.json()["acceptances"]] == ["approver-li", "approver-wang"]
        approved = await approve(client, env, "research-continuity", 1, "approver")
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "active"
        shown = approved.json()["risk"]
        assert shown["exceeds_threshold"] and {a["by"] for a in shown["accepted_by"]} == {
            "approver-li",
            "approver-wang",
        }

        extract = await client.post(
            "/v1/agreements/research-continuity/extract", headers=env.auth("research"), json={"limit": 2}
        )
        assert extract.status_code == 200, extract.text

    # The reasons are in the log: each acceptance, the approval's entry, and the disclosure's write-ahead entry.
    accepted = events(env, "agreement.risk_accepted")
    assert [(e["by"], e["reason"]) for e in accepted] == [
        ("approver-li", "IRB approved the fine birth dates (PKU-IRB-2026-17)"),
        ("approver-wang", "linkage needs exact dates; recipient audited"),
    ]
    assert all(e["figures"]["exceeds_threshold"] is True for e in accepted)
    (approval,) = [e for e in events(env, "agreement.state_changed") if e["to"] == "approved"]
    assert approval["risk"]["exceeds_threshold"] is True
    assert re.fullmatch(r"0\.[0-9]+", approval["risk"]["prosecutor_risk_max"])  # a decimal string: no floats in the log
    reasons = {a["by"]: a["reason"] for a in approval["risk_acceptance"]["accepted_by"]}
    assert reasons == {
        "approver-li": "IRB approved the fine birth dates (PKU-IRB-2026-17)",
        "approver-wang": "linkage needs exact dates; recipient audited",
    }
    started = [json.loads(b) for b in env.log_bodies() if json.loads(b)["type"] == "disclosure.started"]
    assert started and all(s["risk_acceptance"] == approval["risk_acceptance"] for s in started)


async def test_risk_within_threshold_is_approved_with_its_figures_logged(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, RESEARCH)).status_code == 201
        # Nothing to accept below the threshold.
        assert_problem(await accept(client, env, "approver", reason="just in case"), 409, "risk-within-threshold")
        approved = await approve(client, env, "research-continuity", 1, "approver")
        assert approved.status_code == 200, approved.text
        risk = approved.json()["risk"]
        assert risk["binding"] and not risk["exceeds_threshold"] and risk["unique_records"] == 0
        assert risk["smallest_class"] >= 5 and risk["prosecutor_risk_max"] <= 0.2
        extract = await client.post(
            "/v1/agreements/research-continuity/extract", headers=env.auth("research"), json={"limit": 2}
        )
        assert extract.status_code == 200, extract.text
    (approval,) = [e for e in events(env, "agreement.state_changed") if e["to"] == "approved"]
    assert approval["risk"]["exceeds_threshold"] is False and "risk_acceptance" not in approval
    started = [json.loads(b) for b in env.log_bodies() if json.loads(b)["type"] == "disclosure.started"]
    assert started and all("risk_acceptance" not in s for s in started)


async def test_identified_releases_are_measured_but_not_bound(env: Env) -> None:
    from tests.gateway.lifecycle_support import TEXTS

    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, TEXTS["school-transfer.yaml"])).status_code == 201
        approved = await approve(client, env, "school-transfer", 1, "approver")
    # A named child's record for the receiving school: unique by design; the threshold does not apply.
    assert approved.status_code == 200, approved.text
    risk = approved.json()["risk"]
    assert risk["binding"] is False and risk["exceeds_threshold"] is False and risk["problems"]


def test_a_lifecycle_that_cannot_measure_refuses_outside_use_approvals(env: Env) -> None:
    from gateway.agreements.lifecycle import AgreementLifecycle, LifecycleConflictError
    from gateway.auth import Principal

    registry = use_store(env)
    blind = AgreementLifecycle(registry, env.services.log, env.services.keyring)
    blind.apply(RESEARCH, author=Principal("registry-admin", frozenset({"admin"})))
    with pytest.raises(LifecycleConflictError) as info:
        blind.approve("research-continuity", 1, approver=Principal("approver-li", frozenset({"approver"})))
    assert info.value.code == "risk-not-measured"
