"""Someone with database access edits the agreement and budget tables (not the signed entries): `gateway log verify`
rebuilds them from the entries and names the row, its table, key and column.

Before this check, each edit below verified "log OK": an agreement revoked in the log made active again in the table,
a superseded version's text rewritten, a risk acceptance's reason changed, a privacy budget given back.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gateway.audit.rebuild import StateProjections
from gateway.audit.signer import LogVerifier
from gateway.audit.verify import VerifyReport, verify_log
from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import RESEARCH, activate, apply, approve, set_state, use_store
from tests.gateway.test_aggregate_http import DP_STATS
from tests.gateway.test_risk_acceptance import RISKY, accept

pytestmark = pytest.mark.anyio
DP_URL = "/v1/agreements/dp-stats/aggregate"


def _verify(env: Env) -> VerifyReport:
    env.flush()
    signer = env.services.signer
    assert signer is not None
    return verify_log(env.engine, LogVerifier(signer.public_key))


async def _lifecycle(env: Env) -> None:
    """Two versions of the research agreement (v1 superseded, v2 suspended with a reason), a DP agreement spent
    twice and refused once (nothing spent), a revoked agreement."""
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        await activate(client, env, RESEARCH.replace("version: 1", "version: 2", 1))
        suspended = await set_state(client, env, "research-continuity", "suspended", reason="audit of the recipient")
        assert suspended.status_code == 200, suspended.text
        await activate(client, env, DP_STATS)
        for _ in range(3):  # 0.4 + 0.4 spent of 1.0; the third is refused and spends nothing
            await client.post(DP_URL, headers=env.auth("stats"), json={"group_by": ["gender"]})


def _problems_naming(report: VerifyReport, *parts: str) -> list[str]:
    return [p for p in report.problems if all(part in p for part in parts)]


async def test_an_untouched_lifecycle_verifies(env: Env) -> None:
    await _lifecycle(env)
    report = _verify(env)
    assert report.ok, report.problems
    with env.engine.connect() as conn:
        spent = conn.execute(sa.text("SELECT spent_units, queries FROM privacy_budgets")).one()
    assert tuple(spent) == (800_000_000, 2)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        # the suspended agreement made active again by the table
        (
            "UPDATE agreement_versions SET state = 'active' WHERE agreement_id = 'research-continuity' AND version = 2",
            ("agreement_versions row (research-continuity, version 2)", "state", "edited"),
        ),
        # a superseded version's terms rewritten (its text no longer hashes to the digest the log carries)
        (
            "UPDATE agreement_versions SET text = replace(text, 'k: 5', 'k: 1') WHERE version = 1 "
            "AND agreement_id = 'research-continuity'",
            ("agreement_versions row (research-continuity, version 1)", "text", "edited"),
        ),
        (
            "UPDATE agreement_versions SET approved_by = 'mallory' WHERE agreement_id = 'dp-stats'",
            ("agreement_versions row (dp-stats, version 1)", "approved_by", "edited"),
        ),
        (
            "UPDATE agreement_versions SET state_reason = 'routine' WHERE version = 2",
            ("agreement_versions row (research-continuity, version 2)", "state_reason", "edited"),
        ),
        (
            "UPDATE agreement_versions SET author = 'approver-li', digest = 'sha256:00' "
            "WHERE agreement_id = 'dp-stats'",
            ("agreement_versions row (dp-stats, version 1)", "digest, author", "edited"),
        ),
        (
            "DELETE FROM agreement_versions WHERE agreement_id = 'research-continuity' AND version = 1",
            ("agreement_versions row (research-continuity, version 1)", "missing"),
        ),
        (
            "INSERT INTO agreement_versions (agreement_id, version, text, digest, author, created_at, state, "
            "approved_by, approved_at, state_changed_at, state_changed_by, state_reason) SELECT agreement_id, 9, text,"
            " digest, author, created_at, 'active', approved_by, approved_at, state_changed_at, state_changed_by, NULL "
            "FROM agreement_versions WHERE agreement_id = 'dp-stats'",
            ("agreement_versions row (dp-stats, version 9)", "inserted"),
        ),
        # the budget given back: more queries for the recipient
        (
            "UPDATE privacy_budgets SET spent_units = 0",
            ("privacy_budgets row (dp-stats)", "spent_units (0 stored, 800000000 in the entries)", "edited"),
        ),
        ("UPDATE privacy_budgets SET queries = 1", ("privacy_budgets row (dp-stats)", "queries", "edited")),
        ("DELETE FROM privacy_budgets", ("privacy_budgets row (dp-stats)", "missing", "deleted")),
    ],
)
async def test_editing_an_agreement_or_budget_row_is_named(env: Env, statement: str, expected: tuple[str, ...]) -> None:
    await _lifecycle(env)
    with env.engine.begin() as conn:
        conn.execute(sa.text(statement))
    report = _verify(env)
    assert not report.ok
    assert _problems_naming(report, *expected), report.problems
    assert "TAMPERED" in report.summary()


async def test_editing_a_risk_acceptance_is_named(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, RISKY)).status_code == 201
        assert (await accept(client, env, "approver", reason="IRB approved the exact dates")).status_code == 201
        assert (await accept(client, env, "approver2", reason="recipient audited in 2026")).status_code == 201
        assert (await approve(client, env, "research-continuity", 1, "approver")).status_code == 200
    assert _verify(env).ok
    with env.engine.begin() as conn:
        conn.execute(sa.text("UPDATE agreement_risk_acceptances SET reason = 'fine' WHERE approver = 'approver-wang'"))
        conn.execute(sa.text("DELETE FROM agreement_risk_acceptances WHERE approver = 'approver-li'"))
    report = _verify(env)
    key = "agreement_risk_acceptances row (research-continuity, version 1, "
    assert _problems_naming(report, key + "approver-wang)", "reason", "edited"), report.problems
    assert _problems_naming(report, key + "approver-li)", "missing"), report.problems


async def test_a_budget_spend_that_cannot_be_recorded_is_refunded(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, DP_STATS)
        log = env.services.log
        original = log.append_event

        def refuse(entry: object) -> int:
            if isinstance(entry, dict) and entry.get("type") == "budget.spent":
                raise OSError("disk full")
            return original(entry)  # type: ignore[arg-type]

        log.append_event = refuse  # type: ignore[method-assign]
        try:
            response = await client.post(DP_URL, headers=env.auth("stats"), json={"group_by": ["gender"]})
        finally:
            log.append_event = original  # type: ignore[method-assign]
    assert response.status_code == 503, response.text
    with env.engine.connect() as conn:
        assert tuple(conn.execute(sa.text("SELECT spent_units, queries FROM privacy_budgets")).one()) == (0, 0)
    assert _verify(env).ok


async def test_a_revoked_agreement_made_active_again_in_the_table_is_named(env: Env) -> None:
    """Revocation changes every live version at once (the entry's ``also``); undoing it in the table shows."""
    await _lifecycle(env)
    async with env.client() as client:
        revoked = await set_state(client, env, "research-continuity", "revoked", reason="breach of the agreement")
    assert revoked.status_code == 200, revoked.text
    assert _verify(env).ok
    with env.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE agreement_versions SET state = 'active', state_reason = NULL "
                "WHERE agreement_id = 'research-continuity' AND version = 2"
            )
        )
    report = _verify(env)
    assert _problems_naming(report, "(research-continuity, version 2)", "state, state_reason", "edited"), (
        report.problems
    )


def test_a_malformed_agreement_entry_is_a_finding_not_a_crash() -> None:
    states = StateProjections()
    agreement = {"id": "agr-x", "version": 1, "digest": "sha256:00"}
    states.add(0, {"type": "agreement.state_changed", "agreement": agreement, "from": None, "to": "draft", "by": "a"})
    # no 'to', and an 'also' list with junk and an item without a version
    states.add(
        1,
        {
            "type": "agreement.state_changed",
            "agreement": agreement,
            "from": "draft",
            "by": "b",
            "also": [7, {"from": "draft"}],
        },
    )
    assert states.versions[("agr-x", 1)].state == "None"  # no row can match it: verify names the row
    assert any("version 0 changes state but no entry applied it" in p for p in states.problems), states.problems


async def test_a_forged_dual_control_confirmation_is_named(env: Env) -> None:
    """A revocation requested by one admin, and one executed with a second person: editing the requests table (a
    confirmation nobody gave, a request erased) shows in verify."""
    await _lifecycle(env)
    async with env.client() as client:
        pending = await set_state(client, env, "dp-stats", "revoked", reason="study ended", confirm_by=None)
        done = await set_state(client, env, "research-continuity", "revoked", reason="breach")
    assert pending.status_code == 202 and done.status_code == 200, (pending.text, done.text)
    assert _verify(env).ok
    waiting = pending.json()["id"]
    with env.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE pending_actions SET state = 'confirmed', confirmed_by = 'approver-li' WHERE id = :i"),
            {"i": waiting},
        )
        conn.execute(sa.text("DELETE FROM pending_actions WHERE id != :i"), {"i": waiting})
    report = _verify(env)
    assert _problems_naming(report, f"pending_actions row ({waiting})", "state, confirmed_by", "edited"), (
        report.problems
    )
    assert _problems_naming(report, "pending_actions row (", "missing"), report.problems


async def test_an_edited_alert_acknowledgement_is_named(env: Env) -> None:
    """An acknowledgement (who looked at an alert, and what they noted) is rebuilt from its log entry."""
    from gateway.web.ui.alerts import acknowledge
    from gateway.web.ui.queries import Alert

    for n in range(2):
        alert = Alert("volume", "warning", None, "research-continuity", "many rows", None, f"quota:research:{n}")
        acknowledge(
            env.services,
            env.engine,
            alert,
            by="compliance-officer",
            note="expected: term start",
            at=env.services.clock(),
        )
    assert _verify(env).ok
    with env.engine.begin() as conn:
        edit = "UPDATE alert_acknowledgements SET note = 'nothing to see' WHERE alert_key = :k"
        conn.execute(sa.text(edit), {"k": "quota:research:0"})
        conn.execute(sa.text("DELETE FROM alert_acknowledgements WHERE alert_key = :k"), {"k": "quota:research:1"})
    report = _verify(env)
    assert _problems_naming(report, "alert_acknowledgements row (quota:research:0)", "note", "edited"), report.problems
    assert _problems_naming(report, "alert_acknowledgements row (quota:research:1)", "missing"), report.problems
