"""Agreement lifecycle over HTTP: apply, four-eyes approval, supersession, suspension, revocation, expiry, preview."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.agreements.store import AgreementStore
from gateway.errors import AuditUnavailableError
from gateway.keysource import agreement_owner, domain_owner
from keys import KeyDestroyedError, KeyRing
from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import (
    RESEARCH,
    activate,
    apply,
    approve,
    disclosure_count,
    events,
    set_state,
    use_store,
    wrapped_owners,
)
from tests.gateway.test_extract_http import assert_problem, ndjson

pytestmark = pytest.mark.anyio
EXTRACT = "/v1/agreements/research-continuity/extract"


async def extract(env: Env, body: dict[str, Any] | None = None) -> Any:
    async with env.client() as client:
        return await client.post(EXTRACT, headers=env.auth("research"), json=body or {"limit": 3})


async def test_apply_stores_a_draft_that_is_not_in_force(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        response = await apply(client, env, RESEARCH)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["state"] == "draft" and body["version"] == 1 and body["author"] == "registry-admin"
        assert body["digest"].startswith("sha256:") and body["created"] is True
        assert not [f for f in body["lint"] if f["severity"] == "error"]
        listed = await client.get("/v1/agreements", headers=env.auth("research"))
    assert listed.json()["agreements"] == []
    assert_problem(await extract(env), 404, "not-found")
    (entry,) = events(env, "agreement.state_changed")
    assert entry["from"] is None and entry["to"] == "draft" and entry["by"] == "registry-admin"
    assert entry["agreement"] == {"id": "research-continuity", "version": 1, "digest": body["digest"]}


async def test_four_eyes_the_author_cannot_approve_and_the_approver_is_recorded(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        applied = await apply(client, env, RESEARCH, who="admin2")  # admin2 is admin and approver
        assert applied.status_code == 201
        own = await approve(client, env, "research-continuity", 1, "admin2")
        assert_problem(own, 403, "four-eyes")
        assert "another approver" in own.json()["detail"]
        ok = await approve(client, env, "research-continuity", 1, "approver")
        assert ok.status_code == 200, ok.text
        assert ok.json()["state"] == "active" and ok.json()["approved_by"] == "approver-li"
        again = await approve(client, env, "research-continuity", 1, "approver2")
        assert_problem(again, 409, "not-a-draft")
    response = await extract(env)
    assert response.status_code == 200, response.text
    disclosure = env.disclosure(response.headers["x-disclosure-id"])
    # The database approval is authoritative: the log names the approving principal, not the YAML's approved_by.
    assert disclosure["approved_by"] == "approver-li"
    changes = [(e["from"], e["to"], e["by"]) for e in events(env, "agreement.state_changed")]
    assert changes == [
        (None, "draft", "registry-admin-2"),
        ("draft", "approved", "approver-li"),
        ("approved", "active", "approver-li"),
    ]


async def test_roles_are_enforced(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        assert_problem(await apply(client, env, RESEARCH, who="research"), 403, "role-required")
        assert_problem(await apply(client, env, RESEARCH, who="compliance"), 403, "role-required")
        assert (await apply(client, env, RESEARCH)).status_code == 201
        assert_problem(await approve(client, env, "research-continuity", 1, "admin"), 403, "role-required")
        assert_problem(await approve(client, env, "research-continuity", 1, "research"), 403, "role-required")
        assert_problem(await set_state(client, env, "research-continuity", "revoked", who="approver"), 403)
        assert_problem(await approve(client, env, "research-continuity", 7, "approver"), 404)


async def test_versions_are_immutable(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, RESEARCH)).status_code == 201
        same = await apply(client, env, RESEARCH)
        assert same.status_code == 200 and same.json()["created"] is False
        changed = await apply(client, env, RESEARCH.replace("title: ", "title: Changed ", 1))
        body = assert_problem(changed, 409, "version-exists")
        assert "version: 2" in body["detail"]
        v3 = RESEARCH.replace("version: 1", "version: 3")
        assert (await apply(client, env, v3)).status_code == 201
        older = RESEARCH.replace("version: 1", "version: 2")
        assert_problem(await apply(client, env, older), 409, "version-too-old")
        # Approving v1 while a newer version exists is refused only once the newer one is approved or in force.
        assert (await approve(client, env, "research-continuity", 3, "approver")).status_code == 200
        assert_problem(await approve(client, env, "research-continuity", 1, "approver"), 409, "version-too-old")
    stored = AgreementStore(env.engine).version("research-continuity", 1)
    assert stored is not None and stored.text == RESEARCH and stored.state == "draft"


async def test_a_new_version_supersedes_the_active_one_and_versions_show_diffs(env: Env) -> None:
    use_store(env)
    v2 = (
        RESEARCH.replace("version: 1", "version: 2")
        .replace("  gender:          keep\n", "")
        .replace("quasi_identifiers: [birth_date, gender]", "quasi_identifiers: [birth_date]")
    )
    async with env.client() as client:
        first = await activate(client, env, RESEARCH)
        second = await activate(client, env, v2)
        assert second["version"] == 2
        draft = await apply(client, env, v2.replace("version: 2", "version: 3"))
        assert draft.status_code == 201
        oversight = await client.get("/v1/agreements/research-continuity/versions", headers=env.auth("compliance"))
        party = await client.get("/v1/agreements/research-continuity/versions", headers=env.auth("research"))
        stranger = await client.get("/v1/agreements/research-continuity/versions", headers=env.auth("school"))
    states = [(v["version"], v["state"]) for v in oversight.json()["versions"]]
    assert states == [(1, "superseded"), (2, "active"), (3, "draft")]
    assert [v["version"] for v in party.json()["versions"]] == [1, 2]  # drafts are internal until approved
    assert_problem(stranger, 404)
    diff = oversight.json()["versions"][1]["diff"]
    assert diff["summary"]["fields"]["removed"] == [{"field": "gender", "rule": "keep"}]
    assert "-  gender:          keep" in diff["unified"]
    response = await extract(env)
    assert "gender" not in ndjson(response)[0]
    assert env.disclosure(response.headers["x-disclosure-id"])["agreement_version"] == 2
    superseded = [e for e in events(env, "agreement.state_changed") if e.get("also")]
    assert superseded[-1]["also"] == [{"version": 1, "digest": first["digest"], "from": "active", "to": "superseded"}]


async def test_suspend_and_resume(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        assert_problem(await set_state(client, env, "research-continuity", "active"), 409, "invalid-transition")
        suspended = await set_state(client, env, "research-continuity", "suspended", reason="audit of the study")
        assert suspended.status_code == 200 and suspended.json()["state"] == "suspended"
        before = disclosure_count(env)
        refused = await extract(env)
        assert_problem(refused, 403, "agreement-suspended")
        assert disclosure_count(env) == before  # nothing released, nothing logged as released
        # A version approved during the suspension waits for the resumption, then takes over.
        v2 = RESEARCH.replace("version: 1", "version: 2")
        assert (await apply(client, env, v2)).status_code == 201
        waiting = await approve(client, env, "research-continuity", 2, "approver")
        assert waiting.json()["state"] == "approved"
        assert_problem(await extract(env), 403, "agreement-suspended")
        resumed = await set_state(client, env, "research-continuity", "active")
        assert resumed.json()["version"] == 2 and resumed.json()["state"] == "active"
    assert (await extract(env)).status_code == 200
    entry = next(e for e in events(env, "agreement.state_changed") if e["to"] == "suspended")
    assert entry["reason"] == "audit of the study" and entry["by"] == "registry-admin"


async def test_unknown_states_and_agreements(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        assert_problem(await set_state(client, env, "research-continuity", "suspended"), 404)
        await activate(client, env, RESEARCH)
        assert_problem(await set_state(client, env, "research-continuity", "expired"), 422)
        bad = await client.post("/v1/admin/agreements/research-continuity/state", headers=env.auth("admin"), json=[])
        assert_problem(bad, 400)


async def test_revocation_destroys_the_keys_and_is_final(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        assert (await extract(env)).status_code == 200  # tokens made: the agreement and domain keys exist
        owners = wrapped_owners(env)
        # Its only token is of the pku-study domain: the agreement's own key is made at first use, not here.
        assert domain_owner("pku-study") in owners
        revoked = await set_state(client, env, "research-continuity", "revoked", reason="study ended early")
        assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
        assert_problem(await extract(env), 403, "agreement-revoked")
        assert_problem(await apply(client, env, RESEARCH.replace("version: 1", "version: 2")), 409, "agreement-ended")
        assert_problem(await set_state(client, env, "research-continuity", "active"), 409)
        again = await set_state(client, env, "research-continuity", "revoked")
        assert again.status_code == 200  # idempotent: finishes a key destruction if it had failed
    assert not {agreement_owner("research-continuity"), domain_owner("pku-study")} & wrapped_owners(env)
    destroyed = events(env, "keys.destroyed")[0]
    assert {o["owner"] for o in destroyed["owners"]} == {"agreement:research-continuity", "domain:pku-study"}
    assert destroyed["kept"] == [] and destroyed["reason"] == "study ended early"
    # Even with the master key and the database, a fresh key ring refuses instead of making a new key.
    ring = KeyRing(env.services.keyring.master, env.services.keyring.store)
    with pytest.raises(KeyDestroyedError):
        ring.derive(domain_owner("pku-study"), "tokenize")
    with pytest.raises(KeyDestroyedError):
        env.services.keyring.derive(agreement_owner("research-continuity"), "tokenize")


async def test_linkage_domain_keys_survive_while_another_agreement_in_force_uses_them(env: Env) -> None:
    use_store(env)
    twin = RESEARCH.replace("id: research-continuity", "id: research-twin")
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        await activate(client, env, twin)
        assert (await extract(env)).status_code == 200
        assert (await set_state(client, env, "research-continuity", "revoked")).status_code == 200
        assert domain_owner("pku-study") in wrapped_owners(env)
        kept = events(env, "keys.destroyed")[0]["kept"]
        assert kept == [{"owner": "domain:pku-study", "used_by": ["research-twin"]}]
        assert (await set_state(client, env, "research-twin", "revoked")).status_code == 200
    assert domain_owner("pku-study") not in wrapped_owners(env)
    # A new agreement cannot be approved onto a destroyed linkage domain.
    async with env.client() as client:
        third = RESEARCH.replace("id: research-continuity", "id: research-third")
        assert (await apply(client, env, third)).status_code == 201
        assert_problem(await approve(client, env, "research-third", 1, "approver"), 409, "domain-destroyed")


async def test_expiry_ends_the_agreement_and_destroys_its_keys(env: Env) -> None:
    use_store(env)
    old = RESEARCH.replace("valid_from: 2026-01-01", "valid_from: 2025-01-01").replace(
        "valid_until: 2027-12-31", "valid_until: 2026-06-30"
    )
    async with env.client() as client:
        applied = await apply(client, env, old)
        assert applied.status_code == 201, applied.text
        await approve(client, env, "research-continuity", 1, "approver")
    # The next read of the registry notices valid_until has passed (the harness's today is 2026-11-28): the version
    # expires; the read that noticed still refuses by the validity window, later reads by the state.
    assert_problem(await extract(env), 403, "agreement-not-valid")
    assert_problem(await extract(env), 403, "agreement-expired")
    expired = [e for e in events(env, "agreement.state_changed") if e["to"] == "expired"]
    assert len(expired) == 1 and expired[0]["by"] == "system"
    assert events(env, "keys.destroyed")[0]["agreement"]["id"] == "research-continuity"
    assert env.services.keyring.store.is_destroyed(agreement_owner("research-continuity"))


async def test_lint_errors_block_approval(env: Env) -> None:
    use_store(env)
    risky = RESEARCH.replace("national_id:     drop", "national_id:     keep")
    async with env.client() as client:
        applied = await apply(client, env, risky)
        assert applied.status_code == 201
        assert "identifier-to-research" in {f["code"] for f in applied.json()["lint"] if f["severity"] == "error"}
        refused = await approve(client, env, "research-continuity", 1, "approver")
    body = assert_problem(refused, 409, "lint-errors")
    assert any("identifier-to-research" in e for e in body["errors"])


async def test_invalid_texts_are_refused_with_every_problem_located(env: Env) -> None:
    use_store(env)
    bad = RESEARCH.replace("limits:", "limitz:").replace("gender:          keep", "gendre:          keep")
    async with env.client() as client:
        response = await apply(client, env, bad)
        as_json = await client.post("/v1/admin/agreements", headers=env.auth("admin"), json={"yaml": RESEARCH})
        wrong_type = await client.post(
            "/v1/admin/agreements", headers={**env.auth("admin"), "Content-Type": "application/xml"}, content="<a/>"
        )
        not_yaml = await apply(client, env, "id: [unclosed\n")
    body = assert_problem(response, 422, "invalid-agreement")
    assert any("limitz" in e and "<upload>:" in e for e in body["errors"])
    assert as_json.status_code == 201
    assert_problem(wrong_type, 415)
    assert_problem(not_yaml, 422, "invalid-agreement")


async def test_preview_shows_transformed_samples_and_is_a_logged_disclosure(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, RESEARCH)).status_code == 201
        url = "/v1/admin/agreements/research-continuity/versions/1/preview"
        assert_problem(await client.get(url, headers=env.auth("research")), 403, "role-required")
        assert_problem(await client.get(url, headers=env.auth("compliance")), 403, "role-required")
        response = await client.get(url, headers=env.auth("approver"))
        assert response.status_code == 200, response.text
        assert wrapped_owners(env).isdisjoint({agreement_owner("research-continuity"), domain_owner("pku-study")})
        await approve(client, env, "research-continuity", 1, "approver")
    body = response.json()
    columns = {c["name"]: c for c in body["columns"]}
    assert columns["birth_date"]["rule"] == {"op": "generalize", "to": "year"}
    assert "name" not in columns and "national_id" not in columns
    # The release's own redaction runs on free text: nothing is withheld as unredactable.
    assert not [c for c in columns.values() if "withheld" in c]
    assert len(body["samples"]) == 5
    assert all(len(s["birth_date"]) == 4 and len(s["child_id"]) == 22 for s in body["samples"])
    # A draft previews synthetic rows: released nobody, indexed nobody, and says so.
    assert any("synthetic" in note for note in body["notes"])
    entry = env.disclosure(response.headers["x-disclosure-id"])
    assert entry["operation"] == "preview" and entry["principal"] == "approver-li" and entry["rows"] == 0
    assert entry["status"] == "completed" and entry["purpose"] == "agreement_review"
    # One-off keys: the preview's tokens link to no real release.
    released = ndjson(await extract(env, {"limit": 600}))
    assert not {s["child_id"] for s in body["samples"]} & {r["child_id"] for r in released}


async def test_the_lifecycle_needs_the_database_store(env: Env) -> None:
    async with env.client() as client:
        response = await apply(client, env, RESEARCH)
    assert_problem(response, 501)


async def test_nothing_changes_without_a_log_entry(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_store(env)
    async with env.client() as client:
        assert (await apply(client, env, RESEARCH)).status_code == 201

        def broken(entry: Any) -> int:
            raise AuditUnavailableError("the disclosure log cannot be written")

        monkeypatch.setattr(env.services.log, "append_event", broken)
        assert_problem(await approve(client, env, "research-continuity", 1, "approver"), 503)
        assert_problem(await apply(client, env, RESEARCH.replace("version: 1", "version: 2")), 503)
    versions = AgreementStore(env.engine).versions("research-continuity")
    assert [(v.version, v.state, v.approved_by) for v in versions] == [(1, "draft", None)]


async def test_admin_listing_shows_every_agreement_with_its_state(env: Env) -> None:
    use_store(env)
    async with env.client() as client:
        await activate(client, env, RESEARCH)
        await apply(client, env, RESEARCH.replace("id: research-continuity", "id: research-draft"))
        listing = await client.get("/v1/admin/agreements", headers=env.auth("compliance"))
        forbidden = await client.get("/v1/admin/agreements", headers=env.auth("research"))
    states = {a["agreement_id"]: a["state"] for a in listing.json()["agreements"]}
    assert states == {"research-continuity": "active", "research-draft": "draft"}
    assert "text" not in json.dumps(listing.json())
    assert_problem(forbidden, 403)


def test_state_change_entries_verify_in_the_log(sqlite_env: Env) -> None:
    """Lifecycle entries are ordinary leaves of the Merkle log: the whole log still verifies."""
    import anyio

    from gateway.audit.log import SqlDisclosureLog
    from gateway.audit.signer import LogVerifier
    from gateway.audit.verify import verify_log

    env = sqlite_env
    use_store(env)

    async def run() -> None:
        async with env.client() as client:
            await activate(client, env, RESEARCH)
            await set_state(client, env, "research-continuity", "revoked")

    anyio.run(run)
    env.services.log.checkpoint()  # type: ignore[attr-defined]
    log = env.services.log
    assert isinstance(log, SqlDisclosureLog) and log.signer is not None
    report = verify_log(env.engine, LogVerifier(log.signer.public_key))  # type: ignore[attr-defined]
    assert report.ok, report.problems
    with env.engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(sa.text("SELECT kind FROM log_entries ORDER BY seq"))]
    assert kinds.count("agreement.state_changed") == 4 and "keys.destroyed" in kinds


async def test_one_admin_cannot_read_a_child_through_a_draft_preview(env: Env, registry_path: Path) -> None:
    """The attack an outside review ran: a draft scoped on one child with everything kept, previewed by the admin
    who wrote it. A draft reads no registry row: the preview shows synthetic samples, none of the child's values."""
    use_store(env)
    conn = sqlite3.connect(registry_path)
    conn.row_factory = sqlite3.Row
    child = conn.execute("SELECT * FROM children WHERE status = 'enrolled' LIMIT 1").fetchone()
    phones = [r[0] for r in conn.execute("SELECT phone FROM guardians WHERE child_id = ?", (child["child_id"],))]
    conn.close()
    draft = f"""\
id: peek
version: 1
title: One child's whole record
parties: [receiving-school]
purpose: enrollment_transfer
legal_basis: "none"
approved_by: nobody@registry.example
valid_from: 2026-01-01
dataset: children
row_scope:
  child_id: {{eq: {child["child_id"]}}}
fields:
  child_id: keep
  national_id: keep
  name: keep
  guardian_phone: keep
  notes: keep
egress: {{on_finding: redact, exempt: [national_id, guardian_phone]}}
"""
    # The draft as the review wrote it has lint errors (a legal basis of "none", free text unredacted): it could
    # never be approved, so it is not previewed at all, and nothing is logged as released.
    clean = draft.replace('legal_basis: "none"', 'legal_basis: "Registry measures, article 12 (transfer of records)"')
    clean = clean.replace("version: 1", "version: 2").replace("notes: keep", "notes: {redact: [CN_RESIDENT_ID]}")
    async with env.client() as client:
        applied = await apply(client, env, draft, who="admin")
        assert applied.status_code == 201, applied.text
        before = disclosure_count(env)
        refused = await client.get("/v1/admin/agreements/peek/versions/1/preview", headers=env.auth("admin"))
        assert_problem(refused, 409, "lint-errors")
        assert disclosure_count(env) == before
        # Lint-clean, the same scope on one child with identifiers kept: the preview is synthetic.
        applied = await apply(client, env, clean, who="admin")
        assert applied.status_code == 201, applied.text
        assert not [f for f in applied.json()["lint"] if f["severity"] == "error"], applied.json()["lint"]
        preview = await client.get("/v1/admin/agreements/peek/versions/2/preview", headers=env.auth("admin"))
    assert preview.status_code == 200, preview.text
    # (the child id is in the answer: it is the draft's own row_scope, which the admin wrote)
    for value in (child["national_id"], child["name"], child["student_number"], *phones):
        assert value not in preview.text
    samples = preview.json()["samples"]
    assert len(samples) == 5 and all(s["name"].startswith("样例") for s in samples)
    entry = env.disclosure(preview.headers["x-disclosure-id"])
    assert entry["rows"] == 0  # nobody was released, so nobody is in the subject index
