"""Agreement review and alert acknowledgement in the dashboard, through the real app (issue 17, item 7).

The browser path must enforce exactly the lifecycle's rules (four eyes, lint errors block, two approvers for a risk
acceptance), with CSRF on every form, and the one authorization table must give the dashboard and the API the same
answers. Each promise is tested by trying to break it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.errors import AuditUnavailableError
from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import RESEARCH, activate, apply, approve, events, use_store
from tests.gateway.test_risk_acceptance import RISKY, registry_values
from tests.gateway.test_ui import SAME_ORIGIN, add_disclosure, csrf, log_of, rows, sign_in, signed_in

pytestmark = pytest.mark.anyio

V1 = "/ui/agreements/research-continuity/versions/1"
V2 = "/ui/agreements/research-continuity/versions/2"
# Version 2 shortens the validity, adds a party and carries markup in its title: the diff must show it escaped.
RESEARCH_V2 = (
    RESEARCH.replace("version: 1", "version: 2", 1)
    .replace("valid_until: 2027-12-31", "valid_until: 2027-06-30")
    .replace("parties: [pku-education-lab]", "parties: [pku-education-lab, tsinghua-lab]")
)
RESEARCH_V2 = re.sub(r"^title: .*$", 'title: "Continuity <script>alert(1)</script>"', RESEARCH_V2, flags=re.M)


def state_of(env: Env, version: int) -> str:
    with env.engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT state FROM agreement_versions WHERE agreement_id = 'research-continuity' AND version = :v"),
            {"v": version},
        ).scalar_one()
    return str(found)


async def post_form(client: httpx.AsyncClient, path: str, page: str, **fields: str) -> httpx.Response:
    """Submit a form of ``page`` as a browser would: its CSRF token and, on a review page, the digest reviewed."""
    reviewed = re.search(r'name="digest" value="([^"]*)"', page)
    digest = {"digest": reviewed.group(1)} if reviewed else {}
    return await client.post(path, data={"csrf_token": csrf(page), **digest, **fields}, headers=SAME_ORIGIN)


def error_text(html: str) -> str:
    match = re.search(r'<div class="notice notice-bad" role="alert" id="decision-error">(.*?)</div>', html, re.S)
    assert match is not None, "no refusal shown on the page"
    return match.group(1)


# -- review and approval -----------------------------------------------------------------------------------------------
async def test_approver_reviews_the_diff_lint_and_risk_and_approves(env: Env, registry_path: Path) -> None:
    use_store(env)
    async with env.client() as api:
        await activate(api, env, RESEARCH)
        assert (await apply(api, env, RESEARCH_V2)).status_code == 201
    async with signed_in(env, "approver") as client:
        listing = await client.get("/ui/agreements")
        assert listing.status_code == 200
        assert f'href="{V2}"' in listing.text and "Versions awaiting review" in listing.text
        page = await client.get(V2)
        assert page.status_code == 200, page.text
        html = page.text
        # Links and forms under the dashboard's mount path (a context key once shadowed it on this page).
        assert 'href="/ui/static/ui.css"' in html and f'action="{V2}/approve"' in html
        # The diff against version 1 (the approved one), line by line, escaped.
        assert "Changes against version 1 (active, approved by approver-li)" in html
        assert '<span class="diff-del">-valid_until: 2027-12-31</span>' in html
        assert '<span class="diff-add">+valid_until: 2027-06-30</span>' in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
        assert "Party added: tsinghua-lab" in html and "valid_until: 2027-12-31 → 2027-06-30" in html
        # Lint and the measured risk rendered as a page, not raw JSON; counts only, no registry value.
        assert 'id="lint-heading"' in html and "Measured re-identification risk" in html
        assert "Prosecutor risk</dt><dd>max " in html and '"prosecutor_risk"' not in html
        assert not {v for v in registry_values(registry_path) if len(v) > 6 and v in html}
        approved = await post_form(client, f"{V2}/approve", html)
        assert approved.status_code == 303 and approved.headers["location"] == f"{V2}?done=approved"
        after = await client.get(approved.headers["location"])
        assert 'id="version-state">active<' in after.text and "approver-li" in after.text
        assert 'id="decision-done"' in after.text and 'id="approve-form"' not in after.text  # decided: no forms
        agreements = (await client.get("/ui/agreements")).text
    assert state_of(env, 2) == "active" and state_of(env, 1) == "superseded"
    assert "Versions awaiting review" not in agreements
    assert "<dt>Version</dt><dd>2 " in agreements
    changed = [e for e in events(env, "agreement.state_changed") if e["agreement"]["version"] == 2]
    assert [(e["to"], e["by"]) for e in changed] == [
        ("draft", "registry-admin"),
        ("approved", "approver-li"),
        ("active", "approver-li"),
    ]
    assert "risk" in changed[1]  # the measured figures are in the approval's entry, as over the API


async def test_the_author_cannot_approve_or_reject_its_own_version_in_the_browser(env: Env) -> None:
    use_store(env)
    async with env.client() as api:
        assert (await apply(api, env, RESEARCH, who="admin2")).status_code == 201  # admin2: admin and approver
    async with signed_in(env, "admin2") as client:
        page = (await client.get(V1)).text
        assert "You applied this version" in page
        refused = await post_form(client, f"{V1}/approve", page)
        assert refused.status_code == 403
        assert "another approver must approve it (four eyes)" in error_text(refused.text)
        rejected = await post_form(client, f"{V1}/reject", page, reason="I changed my mind")
        assert rejected.status_code == 403 and "four eyes" in error_text(rejected.text)
    assert state_of(env, 1) == "draft"
    assert [e["to"] for e in events(env, "agreement.state_changed")] == ["draft"]


async def test_a_rejection_needs_a_reason_is_logged_and_final(env: Env) -> None:
    use_store(env)
    async with env.client() as api:
        assert (await apply(api, env, RESEARCH)).status_code == 201
    async with signed_in(env, "approver") as client:
        page = (await client.get(V1)).text
        for blank in ("", "   "):
            no_reason = await post_form(client, f"{V1}/reject", page, reason=blank)
            assert no_reason.status_code == 422 and "needs a reason" in error_text(no_reason.text)
        assert state_of(env, 1) == "draft"
        done = await post_form(client, f"{V1}/reject", page, reason="birth dates too fine for this purpose")
        assert done.status_code == 303
        shown = (await client.get(done.headers["location"])).text
        assert 'id="version-state">rejected<' in shown and "birth dates too fine for this purpose" in shown
        again = await post_form(client, f"{V1}/approve", page)
        assert again.status_code == 409 and "only a draft can be approved" in error_text(again.text)
    async with env.client() as api:  # the API agrees: a rejected version is never approvable
        assert (await approve(api, env, "research-continuity", 1, "approver2")).status_code == 409
    assert state_of(env, 1) == "rejected"
    rejected = [e for e in events(env, "agreement.state_changed") if e["to"] == "rejected"]
    assert len(rejected) == 1 and rejected[0]["by"] == "approver-li"
    assert rejected[0]["reason"] == "birth dates too fine for this purpose"


async def test_the_api_rejects_under_the_same_rules(env: Env) -> None:
    use_store(env)
    url = "/v1/admin/agreements/research-continuity/versions/1/reject"
    async with env.client() as api:
        assert (await apply(api, env, RESEARCH, who="admin2")).status_code == 201
        own = await api.post(url, headers=env.auth("admin2"), json={"reason": "mine"})
        admin = await api.post(url, headers=env.auth("admin"), json={"reason": "no"})
        blank = await api.post(url, headers=env.auth("approver"), json={"reason": "   "})
        missing = await api.post(url, headers=env.auth("approver"), json={})
        assert state_of(env, 1) == "draft"
        done = await api.post(url, headers=env.auth("approver"), json={"reason": "too fine"})
        again = await api.post(url, headers=env.auth("approver2"), json={"reason": "again"})
    assert own.status_code == 403 and own.json()["type"].endswith("/four-eyes")
    assert admin.status_code == 403 and admin.json()["type"].endswith("/role-required")
    assert blank.status_code == 422 and missing.status_code == 400
    assert done.status_code == 200 and done.json()["state"] == "rejected" and done.json()["state_reason"] == "too fine"
    assert again.status_code == 409 and again.json()["type"].endswith("/not-a-draft")


async def test_lint_errors_block_approval_in_the_browser(env: Env) -> None:
    use_store(env)
    bad = RESEARCH.replace("national_id:     drop", "national_id:     keep")
    async with env.client() as api:
        assert (await apply(api, env, bad)).status_code == 201
    async with signed_in(env, "approver") as client:
        page = (await client.get(V1)).text
        assert "identifier-to-research" in page and "cannot be approved" in page
        refused = await post_form(client, f"{V1}/approve", page)
    assert refused.status_code == 409
    assert "lint finds" in error_text(refused.text) and "identifier-to-research" in error_text(refused.text)
    assert state_of(env, 1) == "draft"


async def test_a_risk_above_threshold_needs_two_approvers_in_the_browser(env: Env) -> None:
    use_store(env)
    async with env.client() as api:
        assert (await apply(api, env, RISKY)).status_code == 201
    async with signed_in(env, "approver") as first, signed_in(env, "approver2") as second:
        page = (await first.get(V1)).text
        assert "Above the catalog" in page and 'id="accept-risk-form"' in page
        refused = await post_form(first, f"{V1}/approve", page)
        assert refused.status_code == 409 and "0 of 2 so far" in error_text(refused.text)
        no_reason = await post_form(first, f"{V1}/accept-risk", page, reason="")
        assert no_reason.status_code == 422
        accepted = await post_form(first, f"{V1}/accept-risk", page, reason="IRB approved exact dates")
        assert accepted.status_code == 303
        twice = await post_form(first, f"{V1}/accept-risk", page, reason="again")
        assert twice.status_code == 409 and "second, different approver" in error_text(twice.text)
        alone = await post_form(first, f"{V1}/approve", page)
        assert alone.status_code == 409 and "1 of 2 so far" in error_text(alone.text)
        other = (await second.get(V1)).text
        assert "approver-li" in other and "IRB approved exact dates" in other
        assert (await post_form(second, f"{V1}/accept-risk", other, reason="recipient audited")).status_code == 303
        approved = await post_form(second, f"{V1}/approve", other)
    assert approved.status_code == 303, approved.text
    assert state_of(env, 1) == "active"
    assert [e["by"] for e in events(env, "agreement.risk_accepted")] == ["approver-li", "approver-wang"]


# -- CSRF --------------------------------------------------------------------------------------------------------------
async def test_decision_and_acknowledgement_forms_refuse_missing_wrong_and_cross_site_tokens(env: Env) -> None:
    use_store(env)
    add_disclosure(env, 1, status="failed")
    async with env.client() as api:
        assert (await apply(api, env, RISKY)).status_code == 201
    async with signed_in(env, "compliance") as other:
        foreign = csrf((await other.get("/ui/")).text)
    async with signed_in(env, "approver") as approver, signed_in(env, "compliance") as officer:
        for client, posts in (
            (
                approver,
                [
                    (f"{V1}/approve", {"confirm": "1"}),
                    (f"{V1}/reject", {"reason": "x"}),
                    (f"{V1}/accept-risk", {"reason": "x"}),
                ],
            ),
            (officer, [("/ui/alerts/acknowledge", {"alert_key": "disclosure:t0001pku:failed", "note": "seen"})]),
        ):
            token = csrf((await client.get("/ui/")).text)
            attempts = {
                "no token": ({}, SAME_ORIGIN),
                "wrong token": ({"csrf_token": "0" * 64}, SAME_ORIGIN),
                "another session's token": ({"csrf_token": foreign}, SAME_ORIGIN),
                "cross-site": ({"csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
                "foreign origin": ({"csrf_token": token}, {"Origin": "https://evil.example"}),
                "no origin evidence": ({"csrf_token": token}, {}),
            }
            for path, fields in posts:
                for name, (form, headers) in attempts.items():
                    if client is officer and name == "another session's token":
                        continue  # that token is the officer's own other session: tested with the approver
                    response = await client.post(path, data={**form, **fields}, headers=headers)
                    assert response.status_code == 403, (path, name, response.status_code)
    assert state_of(env, 1) == "draft"
    assert rows(env, "SELECT * FROM agreement_risk_acceptances") == []
    assert rows(env, "SELECT * FROM alert_acknowledgements") == []


# -- one authorization table for both faces ---------------------------------------------------------------------------
# Hand-written expectations (not read from gateway/web/authz.py, so a changed table fails here): who gets what.
RISK_READERS = {"compliance", "admin", "approver"}
APPROVERS = {"approver"}
ACKNOWLEDGERS = {"compliance"}
WHO = ("compliance", "admin", "approver", "research")


async def test_the_authorization_matrix_holds_over_api_and_dashboard(env: Env) -> None:
    use_store(env)
    add_disclosure(env, 1, status="failed")
    async with env.client() as api:
        await activate(api, env, RESEARCH)
        for who in WHO:
            risk = await api.get("/v1/agreements/research-continuity/risk", headers=env.auth(who))
            assert risk.status_code == (200 if who in RISK_READERS else 403), (who, risk.status_code)
    for who in WHO:
        async with env.client() as client:
            auth = env.auth(who)
            entered = await client.get("/ui/", headers=auth)
            if who == "research":
                assert entered.status_code == 403 and "cannot sign in here" in entered.text
                assert (await sign_in(client, env, who)).status_code == 403
            else:
                assert entered.status_code == 200, who
            page = await client.get("/ui/agreements/research-continuity/risk", headers=auth)
            assert page.status_code == (200 if who in RISK_READERS else 403), (who, page.status_code)
            review = await client.get(V1, headers=auth)
            assert review.status_code == (200 if who in RISK_READERS else 403), who
            if who in RISK_READERS:
                assert "Measured re-identification risk" in page.text
            # Approvers review, but the disclosure log, its export and a child's accounting stay compliance's.
            for path in ("/ui/disclosures", "/ui/disclosures/export.csv", "/ui/subjects"):
                expected = 200 if who == "compliance" else 403
                assert (await client.get(path, headers=auth)).status_code == expected, (who, path)
            reject = await client.post(f"{V1}/reject", headers=auth, data={"reason": "x"})
            assert reject.status_code in ((409,) if who in APPROVERS else (403,)), (who, reject.status_code)
            ack = await client.post("/ui/alerts/acknowledge", headers=auth, data={"alert_key": "nope", "note": "x"})
            assert ack.status_code == (404 if who in ACKNOWLEDGERS else 403), (who, ack.status_code)
            overview = (await client.get("/ui/", headers=auth)).text if who != "research" else ""
            if who in ACKNOWLEDGERS:
                assert 'action="/ui/alerts/acknowledge"' in overview
            else:
                assert 'action="/ui/alerts/acknowledge"' not in overview
            if who == "approver":
                assert "Disclosure log</a>" not in overview and "Subject accounting</a>" not in overview
    # The agreements page links the risk page for everyone who may read it (it used to send compliance to a 403).
    async with signed_in(env, "compliance") as officer:
        listing = (await officer.get("/ui/agreements")).text
    assert 'href="/ui/agreements/research-continuity/risk"' in listing
    assert state_of(env, 1) == "active"


# -- alerts ------------------------------------------------------------------------------------------------------------
async def test_compliance_acknowledges_an_alert_with_a_note_that_is_logged(env: Env) -> None:
    failed = add_disclosure(env, 1, status="failed")
    key = f"disclosure:{failed}:failed"
    async with signed_in(env, "compliance") as client:
        page = (await client.get("/ui/")).text
        assert f'data-alert-key="{key}"' in page and 'action="/ui/alerts/acknowledge"' in page
        for note, status in (("", 422), ("   ", 422), ("x" * 501, 422)):
            bad = await post_form(client, "/ui/alerts/acknowledge", page, alert_key=key, note=note)
            assert bad.status_code == status
        for made_up in ("disclosure:nope:failed", "quota:x:rows:2026-01-01", "'; DROP TABLE x;--", "a" * 300):
            unknown = await post_form(client, "/ui/alerts/acknowledge", page, alert_key=made_up, note="seen")
            assert unknown.status_code == 404, made_up
        assert rows(env, "SELECT * FROM alert_acknowledgements") == []
        note = "Registry timeout; <b>no data left</b>, checked with the DBA"
        done = await post_form(client, "/ui/alerts/acknowledge", page, alert_key=key, note=note)
        assert done.status_code == 303
        after = (await client.get("/ui/")).text
        twice = await post_form(client, "/ui/alerts/acknowledge", after, alert_key=key, note="again")
        # The log with the acknowledgement in it still verifies end to end (entries, tree, checkpoints).
        log_of(env).checkpoint()
        assert (await post_form(client, "/ui/log/verify", after)).status_code == 303
    assert [bool(r[0]) for r in rows(env, "SELECT ok FROM log_verifications")] == [True]
    assert twice.status_code == 409
    row = re.search(rf'<tr class="alert-acked" data-alert-key="{re.escape(key)}">(.*?)</tr>', after, re.S)
    assert row is not None, "the alert is not shown as acknowledged"
    assert "acknowledged</span> by compliance-officer" in row.group(1)
    assert "&lt;b&gt;no data left&lt;/b&gt;" in row.group(1) and "<b>" not in row.group(1)
    logged = events(env, "compliance.alert_acknowledged")
    assert len(logged) == 1
    entry: dict[str, Any] = logged[0]
    assert entry["alert"] == {"key": key, "kind": "failed", "agreement": "research-continuity", "disclosure_id": failed}
    assert entry["by"] == "compliance-officer" and entry["note"] == note
    stored = rows(env, "SELECT acknowledged_by, note, log_index FROM alert_acknowledgements")
    assert [(r[0], r[1]) for r in stored] == [("compliance-officer", note)]
    assert stored[0][2] == entry["index"]
    # The acknowledgement is no alert itself (its type is outside alert.*).
    assert after.count("data-alert-key=") == page.count("data-alert-key=")
    assert json.dumps(entry)


async def test_an_acknowledgement_whose_log_entry_fails_is_undone(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = add_disclosure(env, 1, status="failed")

    def broken(_entry: Any) -> int:
        raise AuditUnavailableError("the disclosure log cannot be written")

    async with signed_in(env, "compliance") as client:
        page = (await client.get("/ui/")).text
        monkeypatch.setattr(env.services.log, "append_event", broken)
        response = await post_form(
            client, "/ui/alerts/acknowledge", page, alert_key=f"disclosure:{failed}:failed", note="x"
        )
    assert response.status_code == 503 and "disclosure log cannot be written" in response.text
    assert rows(env, "SELECT * FROM alert_acknowledgements") == []


async def test_made_up_versions_and_agreements_are_404_pages(env: Env) -> None:
    use_store(env)
    async with env.client() as api:
        await activate(api, env, RESEARCH)
    async with signed_in(env, "approver") as client:
        token = csrf((await client.get(V1)).text)
        for path in (
            "/ui/agreements/research-continuity/versions/2",
            "/ui/agreements/research-continuity/versions/\u00b2",  # "²".isdigit() is True, int("²") fails
            "/ui/agreements/research-continuity/versions/12345678",
            "/ui/agreements/no-such-agreement/versions/1",
            "/ui/agreements/" + "a" * 65 + "/versions/1",
            "/ui/agreements/no-such-agreement/risk",
        ):
            page = await client.get(path)
            assert page.status_code == 404 and page.headers["content-type"].startswith("text/html"), path
        for path in ("/ui/agreements/research-continuity/versions/2/approve", "/ui/agreements/nope/versions/1/reject"):
            decided = await client.post(path, data={"csrf_token": token, "reason": "x"}, headers=SAME_ORIGIN)
            assert decided.status_code == 404, path
    assert state_of(env, 1) == "active"


# -- attack: the text changes between review and approval -------------------------------------------------------------
async def test_approval_binds_the_digest_the_approver_reviewed(env: Env) -> None:
    """Someone with database access rewrites a draft (text and digest, so it still parses) after the approver loaded
    the review page: the approve and accept-risk forms carry the digest reviewed, and a changed draft is refused."""
    from gateway.web.ui.review import _lifecycle

    use_store(env)
    async with env.client() as api:
        assert (await apply(api, env, RESEARCH)).status_code == 201
    wider = RESEARCH.replace("parties: [pku-education-lab]", "parties: [pku-education-lab, tsinghua-lab]")
    assert wider != RESEARCH
    swapped = _lifecycle(env.services).check_text(wider, "<tamper>").digest
    async with signed_in(env, "approver") as client:
        page = (await client.get(V1)).text
        with env.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE agreement_versions SET text = :t, digest = :d "
                    "WHERE agreement_id = 'research-continuity' AND version = 1"
                ),
                {"t": wider, "d": swapped},
            )
        for form in ("approve", "accept-risk"):
            refused = await post_form(client, f"{V1}/{form}", page, reason="looked fine")
            assert refused.status_code == 409, form
            assert "changed since" in error_text(refused.text), form
        # A form without the digest (not from a review page) decides nothing either.
        bare = await client.post(f"{V1}/approve", data={"csrf_token": csrf(page)}, headers=SAME_ORIGIN)
        assert bare.status_code == 409
        assert state_of(env, 1) == "draft"
        # Reviewed again, the rewritten text is still refused: no log entry applied it (test_four_eyes_tamper.py).
        again = (await client.get(V1)).text
        assert "tsinghua-lab" in again
        still = await post_form(client, f"{V1}/approve", again)
        assert still.status_code == 409 and "log records" in error_text(still.text)
    assert state_of(env, 1) == "draft"
