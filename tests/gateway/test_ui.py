"""Compliance dashboard over HTTP, through the real app: sign-in and sessions, CSRF, roles, headers, pages, data."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import structlog

from gateway.applog import configure_logging
from gateway.audit.log import DisclosureStart, SqlDisclosureLog
from gateway.web.ui.charts import Series, nice_ceiling, stacked_bars
from gateway.web.ui.headers import CONTENT_SECURITY_POLICY
from gateway.web.ui.tables import UiSessionRow
from tests.conftest import TODAY
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
NOW = dt.datetime.combine(TODAY, dt.time(10, 0), tzinfo=dt.UTC)  # the harness clock


# -- helpers -----------------------------------------------------------------------------------------------------------
def csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, env: Env, who: str = "compliance", **extra: str) -> httpx.Response:
    page = await client.get("/ui/sign-in")
    assert page.status_code == 200
    form = {"csrf_token": csrf(page.text), "api_key": env.keys[who], "next": "", **extra}
    return await client.post("/ui/sign-in", data=form, headers=SAME_ORIGIN)


@contextlib.asynccontextmanager
async def signed_in(env: Env, who: str = "compliance") -> AsyncIterator[httpx.AsyncClient]:
    async with env.client() as client:
        response = await sign_in(client, env, who)
        assert response.status_code == 303, response.text
        yield client


def log_of(env: Env) -> SqlDisclosureLog:
    log = env.services.log
    assert isinstance(log, SqlDisclosureLog)
    return log


def add_disclosure(
    env: Env,
    n: int,
    *,
    principal: str = "pku-education-lab",
    agreement: str = "research-continuity",
    purpose: str = "research",
    status: str = "completed",
    started_at: dt.datetime = NOW,
    rows: int = 1,
    details: dict[str, Any] | None = None,
) -> str:
    """A disclosure written straight to the log (fast; the API path is covered by the extract tests)."""
    disclosure_id = f"t{n:04d}{principal[:3]}"
    log = log_of(env)
    log.start(
        DisclosureStart(
            disclosure_id,
            "req",
            principal,
            agreement,
            1,
            "sha256:x",
            "li.ming@registry.example",
            "Ethics approval",
            purpose,
            "extract",
            {
                "dataset": "children",
                "fields": [{"name": "child_id", "op": "tokenize", "domain": "pku-study", "length": 16}],
                "filters": [],
                "limit": None,
            },
            started_at=started_at,
        )
    )
    if status != "started":
        log.finish(
            disclosure_id,
            status=status,
            rows=rows,
            nbytes=rows * 10,
            sha256="ab" * 32,
            error="registry-unavailable" if status == "failed" else None,
            details=details,
        )
    return disclosure_id


async def extract(
    env: Env, who: str = "research", body: dict[str, Any] | None = None, agreement: str = "research-continuity"
) -> httpx.Response:
    async with env.client() as client:
        response = await client.post(
            f"/v1/agreements/{agreement}/extract", headers=env.auth(who), json=body or {"limit": 3}
        )
    assert response.status_code == 200, response.text
    return response


def rows(env: Env, sql: str) -> list[Any]:
    with env.engine.connect() as conn:
        return list(conn.execute(sa.text(sql)))


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(fmt="json", level="debug", stream=stream)
    yield stream
    structlog.reset_defaults()


# -- sign-in, sessions -------------------------------------------------------------------------------------------------
async def test_sign_in_sets_a_strict_session_cookie_and_shows_the_overview(env: Env) -> None:
    async with env.client() as client:
        anonymous = await client.get("/ui/")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/ui/sign-in?next=/ui/"
        response = await sign_in(client, env)
        assert response.status_code == 303 and response.headers["location"] == "/ui/"
        cookie = next(
            v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("dxg_ui_session=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/ui", "max-age=28800"} <= flags
        assert "secure" not in flags  # plain http (the demo on 127.0.0.1): a Secure cookie would never come back
        overview = await client.get("/ui/")
    assert overview.status_code == 200
    assert "Signed in as <strong>compliance-officer</strong>" in overview.text
    assert env.keys["compliance"] not in overview.text and env.keys["compliance"] not in cookie
    # The database holds a keyed hash of the session id, never the id itself.
    token = cookie.split(";")[0].split("=", 1)[1]
    stored = rows(env, "SELECT id_hash, principal FROM ui_sessions")
    assert [r.principal for r in stored] == ["compliance-officer"]
    assert token not in stored[0].id_hash
    # The server-side expiry matches the cookie's: 8 hours from sign-in (the harness clock), then refused.
    with env.engine.connect() as conn:
        expires = conn.execute(sa.select(UiSessionRow.__table__.c.expires_at)).scalar_one()  # type: ignore[attr-defined]
    assert expires == NOW + dt.timedelta(hours=8)


async def test_cookie_is_secure_over_https(env: Env) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=env.app), base_url="https://gateway.test") as client:
        response = await sign_in(client, env)
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "dxg_ui_session=" in v)
    assert "secure" in cookie.lower()
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_sign_out_ends_the_session_on_the_server(env: Env) -> None:
    async with signed_in(env) as client:
        token = client.cookies["dxg_ui_session"]
        page = await client.get("/ui/")
        out = await client.post("/ui/sign-out", data={"csrf_token": csrf(page.text)}, headers=SAME_ORIGIN)
        assert out.status_code == 303 and out.headers["location"] == "/ui/sign-in?signed_out=1"
        assert "You have signed out" in (await client.get(out.headers["location"])).text
    assert rows(env, "SELECT * FROM ui_sessions") == []
    # Replaying the old cookie (as a copy of it would) no longer works.
    async with env.client() as replay:
        replay.cookies.set("dxg_ui_session", token, domain="gateway.test", path="/ui")
        again = await replay.get("/ui/agreements")
    assert again.status_code == 303 and "expired=1" in again.headers["location"]


_ENDINGS = {
    "expired": ("UPDATE ui_sessions SET expires_at = :t", {"t": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)}),
    "key-revoked": (
        "UPDATE api_keys SET revoked_at = :t WHERE principal = 'compliance-officer'",
        {"t": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
    ),
    "role-removed": ("UPDATE principals SET roles = 'requester' WHERE name = 'compliance-officer'", {}),
    "principal-disabled": ("UPDATE principals SET disabled = :t WHERE name = 'compliance-officer'", {"t": True}),
}


@pytest.mark.parametrize("ending", sorted(_ENDINGS))
async def test_sessions_end_with_expiry_revocation_disabling_and_role_removal(env: Env, ending: str) -> None:
    async with signed_in(env) as client:
        assert (await client.get("/ui/agreements")).status_code == 200
        sql, params = _ENDINGS[ending]
        with env.engine.begin() as conn:
            conn.execute(sa.text(sql), params)
        after = await client.get("/ui/agreements")
    if ending == "role-removed":
        assert after.status_code == 403 and "cannot sign in here" in after.text
    else:
        assert after.status_code == 303 and after.headers["location"].startswith("/ui/sign-in?next=")
        assert "expired=1" in after.headers["location"]


async def test_sign_in_returns_to_the_page_asked_for_and_never_off_site(env: Env) -> None:
    async with env.client() as client:
        first = await client.get("/ui/disclosures?status=failed")
        assert first.headers["location"] == "/ui/sign-in?next=/ui/disclosures%3Fstatus%3Dfailed"
        page = await client.get(first.headers["location"])
        assert 'name="next" value="/ui/disclosures?status=failed"' in page.text
        back = await client.post(
            "/ui/sign-in",
            headers=SAME_ORIGIN,
            data={
                "csrf_token": csrf(page.text),
                "api_key": env.keys["compliance"],
                "next": "/ui/disclosures?status=failed",
            },
        )
        assert back.headers["location"] == "/ui/disclosures?status=failed"
    for target in ("https://evil.example/", "//evil.example/ui/", "/v1/agreements", "/ui/\\evil"):
        async with env.client() as client:
            response = await sign_in(client, env, next=target)
            assert response.headers["location"] == "/ui/", target


async def test_invalid_key_and_requesters_cannot_sign_in(env: Env) -> None:
    async with env.client() as client:
        page = await client.get("/ui/sign-in")
        wrong = await client.post(
            "/ui/sign-in", headers=SAME_ORIGIN, data={"csrf_token": csrf(page.text), "api_key": "dxg_nope", "next": ""}
        )
        assert wrong.status_code == 401 and "not valid" in wrong.text
        assert "dxg_nope" not in wrong.text  # the key is never echoed
        for who in ("research", "outsider"):
            refused = await sign_in(client, env, who)
            assert refused.status_code == 403
            assert "cannot sign in here" in refused.text
            assert "dxg_ui_session" not in refused.headers.get("set-cookie", "")
            assert env.keys[who] not in refused.text
        admin = await sign_in(client, env, "admin")
        assert admin.status_code == 303
    assert [r.principal for r in rows(env, "SELECT principal FROM ui_sessions")] == ["registry-admin"]


# -- CSRF --------------------------------------------------------------------------------------------------------------
async def test_forms_refuse_missing_wrong_foreign_and_cross_site_tokens(env: Env) -> None:
    async with signed_in(env, "admin") as other:
        foreign_token = csrf((await other.get("/ui/")).text)
    async with signed_in(env) as client:
        token = csrf((await client.get("/ui/")).text)
        attempts = {
            "no token": ({}, SAME_ORIGIN),
            "wrong token": ({"csrf_token": "0" * 64}, SAME_ORIGIN),
            "another session's token": ({"csrf_token": foreign_token}, SAME_ORIGIN),
            "cross-site": ({"csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
            "same-site subdomain": ({"csrf_token": token}, {"Sec-Fetch-Site": "same-site"}),
            "foreign origin": ({"csrf_token": token}, {"Origin": "https://evil.example"}),
            "opaque origin": ({"csrf_token": token}, {"Origin": "null"}),
            "foreign referer": ({"csrf_token": token}, {"Referer": "https://evil.example/ui/"}),
            "no origin evidence": ({"csrf_token": token}, {}),
        }
        for name, (form, headers) in attempts.items():
            for path in ("/ui/log/verify", "/ui/subjects", "/ui/sign-out"):
                response = await client.post(path, data={**form, "subject_id": "C1"}, headers=headers)
                assert response.status_code == 403, (name, path)
                assert (
                    "csrf" not in response.text.lower()
                    or "security token" in response.text
                    or "cross-site" in (response.text)
                )
        assert rows(env, "SELECT * FROM log_verifications") == []
        assert (await client.get("/ui/")).status_code == 200  # still signed in: sign-out was refused too
        # Origin / Referer are accepted as fallback evidence when the browser sends no Sec-Fetch-Site.
        ok_origin = await client.post(
            "/ui/log/verify", data={"csrf_token": token}, headers={"Origin": "http://gateway.test"}
        )
        ok_referer = await client.post(
            "/ui/log/verify", data={"csrf_token": token}, headers={"Referer": "http://gateway.test/ui/"}
        )
    assert ok_origin.status_code == ok_referer.status_code == 303
    assert len(rows(env, "SELECT * FROM log_verifications")) == 2


async def test_sign_in_form_has_its_own_csrf_token(env: Env) -> None:
    async with env.client() as client:
        no_cookie = await client.post(
            "/ui/sign-in", headers=SAME_ORIGIN, data={"csrf_token": "0" * 64, "api_key": env.keys["compliance"]}
        )
        assert no_cookie.status_code == 403 and "did not come from this site" in no_cookie.text
        page = await client.get("/ui/sign-in")
        cross = await client.post(
            "/ui/sign-in",
            headers={"Sec-Fetch-Site": "cross-site"},
            data={"csrf_token": csrf(page.text), "api_key": env.keys["compliance"]},
        )
        assert cross.status_code == 403
    assert rows(env, "SELECT * FROM ui_sessions") == []


async def test_forms_reject_other_encodings_and_oversized_bodies(env: Env) -> None:
    async with signed_in(env) as client:
        token = csrf((await client.get("/ui/")).text)
        as_json = await client.post("/ui/subjects", json={"csrf_token": token, "subject_id": "x"}, headers=SAME_ORIGIN)
        huge = await client.post(
            "/ui/subjects", data={"csrf_token": token, "subject_id": "x" * 10_000}, headers=SAME_ORIGIN
        )
    assert as_json.status_code == 415
    assert huge.status_code == 413


# -- roles, Bearer -----------------------------------------------------------------------------------------------------
async def test_bearer_keys_of_compliance_and_admin_work_without_a_cookie(env: Env, registry_path: Path) -> None:
    await extract(env)
    async with env.client() as client:
        # What each may see follows the one authorization table (gateway/web/authz.py): an admin is no log reader.
        pages = {
            "compliance": ("/ui/", "/ui/disclosures", "/ui/agreements", "/ui/subjects"),
            "admin": ("/ui/", "/ui/agreements"),
        }
        for who, paths in pages.items():
            for path in paths:
                response = await client.get(path, headers=env.auth(who))
                assert response.status_code == 200, (who, path)
        # Scripts post without a CSRF token: a Bearer key is never attached by a browser on its own.
        lookup = await client.post("/ui/subjects", data={"subject_id": "C00000001"}, headers=env.auth("compliance"))
        assert lookup.status_code == 200 and "Accounting of disclosures" in lookup.text
        requester = await client.get("/ui/", headers=env.auth("research"))
        bad = await client.get("/ui/", headers={"Authorization": "Bearer dxg_not_a_key"})
        basic = await client.get("/ui/", headers={"Authorization": "Basic abc"})
    assert requester.status_code == 403 and "cannot sign in here" in requester.text
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Bearer")
    assert basic.status_code == 401


# -- headers -----------------------------------------------------------------------------------------------------------
async def test_every_ui_response_carries_strict_security_headers(env: Env) -> None:
    disclosure_id = (await extract(env)).headers["x-disclosure-id"]
    async with signed_in(env) as client:
        token = csrf((await client.get("/ui/")).text)
        responses = {
            path: await client.get(path)
            for path in (
                "/ui/",
                "/ui/disclosures",
                f"/ui/disclosures/{disclosure_id}",
                "/ui/agreements",
                "/ui/subjects",
                "/ui/disclosures/export.csv",
                f"/ui/disclosures/{disclosure_id}/receipt.json",
                "/ui/static/ui.css",
                "/ui/static/print.css",
                "/ui/no-such-page",
                "/ui/disclosures/nonexistent1",
            )
        }
        responses["POST /ui/subjects"] = await client.post(
            "/ui/subjects", headers=SAME_ORIGIN, data={"csrf_token": token, "subject_id": "C1"}
        )
        responses["POST csrf refused"] = await client.post("/ui/log/verify", data={}, headers=SAME_ORIGIN)
    async with env.client() as anonymous:
        responses["sign-in"] = await anonymous.get("/ui/sign-in")
        responses["redirect"] = await anonymous.get("/ui/agreements")
        responses["requester"] = await anonymous.get("/ui/", headers=env.auth("research"))
    assert responses["/ui/no-such-page"].status_code == 404
    assert responses["/ui/disclosures/nonexistent1"].status_code == 404
    for name, response in responses.items():
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["x-content-type-options"] == "nosniff", name
        if headers.get("content-type", "").startswith("text/html"):
            body = response.text
            # The CSP forbids inline script and inline style; the pages must not need them.
            assert "<script" not in body and "style=" not in body and "<style" not in body, name
            assert 'href="#main"' in body and 'id="main"' in body, name  # skip link
            assert headers["cache-control"] == "no-store", name
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


# -- pages -------------------------------------------------------------------------------------------------------------
async def test_log_pagination_follows_the_cursor_without_gaps_or_repeats(env: Env) -> None:
    made = [add_disclosure(env, n, started_at=NOW - dt.timedelta(minutes=n)) for n in range(57)]
    seen: list[str] = []
    async with signed_in(env) as client:
        url: str | None = "/ui/disclosures"
        pages = 0
        while url:
            page = await client.get(url)
            assert page.status_code == 200
            seen += re.findall(r'href="/ui/disclosures/(t\d{4}pku)"', page.text)
            found = re.search(r'href="(/ui/disclosures\?[^"]*cursor=[^"]+)" rel="next"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else None
            pages += 1
        bad = await client.get("/ui/disclosures?cursor=!!")
    assert pages == 2
    assert seen == made[::-1]  # newest (last logged) first, every one exactly once
    assert bad.status_code == 422


async def test_log_filters_by_agreement_principal_purpose_status_and_dates(env: Env) -> None:
    add_disclosure(env, 1)
    add_disclosure(env, 2, principal="finance-bureau", agreement="finance-subsidy", purpose="subsidy_payment")
    add_disclosure(env, 3, status="failed")
    add_disclosure(env, 4, started_at=NOW - dt.timedelta(days=10))
    async with signed_in(env) as client:

        async def ids(query: str) -> set[str]:
            page = await client.get(f"/ui/disclosures?{query}")
            assert page.status_code == 200, page.text
            return set(re.findall(r'href="/ui/disclosures/(t\d{4}\w{3})"', page.text))

        assert await ids("") == {"t0001pku", "t0002fin", "t0003pku", "t0004pku"}
        assert await ids("agreement=finance-subsidy") == {"t0002fin"}
        assert await ids("principal=pku-education-lab") == {"t0001pku", "t0003pku", "t0004pku"}
        assert await ids("purpose=research&status=completed") == {"t0001pku", "t0004pku"}
        assert await ids("status=failed") == {"t0003pku"}
        day = TODAY.isoformat()
        assert await ids(f"since={day}&until={day}") == {"t0001pku", "t0002fin", "t0003pku"}
        old = (TODAY - dt.timedelta(days=10)).isoformat()
        assert await ids(f"since={old}&until={old}") == {"t0004pku"}
        selected = await client.get("/ui/disclosures?agreement=finance-subsidy")
        assert '<option value="finance-subsidy" selected>' in selected.text
        assert 'href="/ui/disclosures/export.csv?agreement=finance-subsidy"' in selected.text
        assert (await client.get("/ui/disclosures?status=deleted")).status_code == 422
        assert (await client.get(f"/ui/disclosures?since={day}&until={old}")).status_code == 422
        assert (await client.get("/ui/disclosures?sql=1")).status_code == 422
        csv_all = await client.get("/ui/disclosures/export.csv")
        csv_failed = await client.get("/ui/disclosures/export.csv?status=failed")
    assert csv_all.headers["content-type"].startswith("text/csv")
    assert csv_all.text.splitlines()[0].startswith("id,started_at,finished_at,status")
    assert len(csv_all.text.splitlines()) == 5
    assert [line.split(",")[0] for line in csv_failed.text.splitlines()[1:]] == ["t0003pku"]


async def test_entry_page_shows_the_accounting_and_a_verified_receipt(env: Env) -> None:
    disclosure_id = (await extract(env, body={"limit": 4, "filters": {"status": {"eq": "enrolled"}}})).headers[
        "x-disclosure-id"
    ]
    async with signed_in(env) as client:
        page = await client.get(f"/ui/disclosures/{disclosure_id}")
        receipt = await client.get(f"/ui/disclosures/{disclosure_id}/receipt.json")
        # Tamper with the finished entry: the page must say so.
        with env.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE log_entries SET body = replace(body, :old, :new) "
                    "WHERE disclosure_id = :d AND kind = 'disclosure.finished'"
                ),
                {"old": '"rows":4', "new": '"rows":3', "d": disclosure_id},
            )
        tampered = await client.get(f"/ui/disclosures/{disclosure_id}")
    text = page.text
    assert page.status_code == 200
    assert "Receipt verified." in text and "NOT verified" not in text
    for expected in (
        "pku-education-lab",
        "li.ming@registry.example",
        "Ethics approval PKU-IRB-2026-17",
        "research-continuity",
        "generalize to year",
        "tokenize (keyed pseudonym, linkage domain pku-study)",
        "status = enrolled",
        "disclosure.started (log index",
        "disclosure.finished (log index",
    ):
        assert expected in text, expected
    assert re.search(r"<dt>Rows</dt><dd>4</dd>", text)
    assert receipt.headers["content-disposition"].startswith("attachment")
    assert receipt.json()["format"] == "dx-gateway-receipt-v1"
    assert tampered.status_code == 200
    assert "Receipt NOT verified" in tampered.text and "not in canonical form" not in tampered.text
    assert "not included in the signed tree" in tampered.text


async def test_subject_lookup_lists_every_disclosure_of_the_child(
    env: Env, registry_path: Path, captured: io.StringIO
) -> None:
    child_id, student, limit = env.first_enrolled_released(registry_path)
    await extract(env, body={"limit": limit})
    await extract(env, who="school", agreement="school-transfer", body={"filters": {"student_number": {"eq": student}}})
    log_of(env).checkpoint()
    async with signed_in(env) as client:
        form = await client.get("/ui/subjects")
        assert 'action="/ui/subjects"' in form.text and 'method="post"' in form.text
        result = await client.post(
            "/ui/subjects", data={"csrf_token": csrf(form.text), "subject_id": child_id}, headers=SAME_ORIGIN
        )
        nobody = await client.post(
            "/ui/subjects", data={"csrf_token": csrf(form.text), "subject_id": "C99999999"}, headers=SAME_ORIGIN
        )
        empty = await client.post(
            "/ui/subjects", data={"csrf_token": csrf(form.text), "subject_id": "  "}, headers=SAME_ORIGIN
        )
    assert result.status_code == 200
    table = result.text[result.text.index('id="accounting"') :]
    assert "2 disclosures included this child" in table
    assert table.index("pku-education-lab") < table.index("receiving-school")  # oldest first
    for expected in (
        "Ethics approval PKU-IRB-2026-17",
        "li.ming@registry.example",
        "school-transfer v1",
        "research-continuity v1",
        "<strong>generalize to year</strong>: birth_date",
    ):
        assert expected in table, expected
    assert re.search(r"Checked against the disclosure log at its latest signed checkpoint:\s+\d+ entries", result.text)
    assert "Generated 2026-11-28 10:00:00 UTC" in result.text
    assert nobody.status_code == 200 and 'id="accounting-none"' in nobody.text
    assert empty.status_code == 422 and "Enter the child" in empty.text
    # The id went only into the POST body: it is in no logged line, and the route logged is the fixed template.
    logged = captured.getvalue()
    assert child_id not in logged and student not in logged
    assert '"route": "/subjects"' in logged or '"route":"/subjects"' in logged


async def test_overview_shows_activity_alerts_and_integrity(env: Env) -> None:
    await extract(env)
    add_disclosure(env, 1, status="aborted", rows=7)
    add_disclosure(env, 2, status="failed")
    add_disclosure(env, 3, status="started", started_at=NOW - dt.timedelta(hours=2))
    add_disclosure(env, 4, status="started", started_at=NOW - dt.timedelta(seconds=30))  # still running: no alert
    add_disclosure(env, 5, details={"egress_findings": [{"entity": "CN_MOBILE", "column": "notes", "count": 2}]})
    add_disclosure(
        env, 6, principal="receiving-school", agreement="school-transfer", purpose="enrollment_transfer", rows=1_900
    )  # 95% of the agreement's 2000 rows per day
    add_disclosure(env, 7, status="failed", started_at=NOW - dt.timedelta(days=45))  # outside the window
    log_of(env).append_event(
        {
            "type": "alert.volume",
            "agreement": {"id": "research-continuity", "version": 1},
            "disclosure_id": "t0005pku",
            "operation": "extract",
            "rows": 5000,
            "median_rows": 10,
            "baseline_disclosures": 20,
            "factor": 10,
        }
    )
    log_of(env).checkpoint()
    async with signed_in(env) as client:
        page = await client.get("/ui/")
        text = page.text
        assert page.status_code == 200
        alerts = text[text.index('id="alerts-heading"') : text.index('id="activity-heading"')]
        assert "Egress scan findings: CN_MOBILE in notes (2)" in alerts
        assert "Release aborted; 7 rows were sent before it stopped" in alerts
        assert "Release failed (registry-unavailable)" in alerts
        assert "Started but never finished" in alerts and "t0003pku" in alerts
        assert "t0004pku" not in alerts and "t0007pku" not in alerts
        assert "1,900 of 2,000 rows allowed today (95%)" in alerts
        assert "Volume alert: 5,000 rows, more than 10 times the median of 10 over the last 20 disclosures" in alerts
        # Charts: inline SVG with an accessible name, and the numbers as a table.
        assert text.count('<svg class="chart"') == 2 and 'role="img"' in text
        assert re.search(
            r"<th scope=\"row\">school-transfer</th><td>enrollment_transfer</td><td class=\"num\">1</td>"
            r"<td class=\"num\">1,900</td>",
            text,
        )
        assert "never (run <code>gateway log verify</code>" in text
        verify = await client.post("/ui/log/verify", data={"csrf_token": csrf(text)}, headers=SAME_ORIGIN)
        assert verify.status_code == 303 and verify.headers["location"] == "/ui/#integrity"
        after = (await client.get("/ui/")).text
    assert "passed" in after and "by dashboard:compliance-officer" in after and "log OK:" in after
    recorded = rows(env, "SELECT ok, source, entries FROM log_verifications")
    assert [(bool(r.ok), r.source) for r in recorded] == [(True, "dashboard:compliance-officer")]
    assert recorded[0].entries == rows(env, "SELECT size FROM log_head")[0].size


async def test_verify_now_records_a_tampered_log(env: Env) -> None:
    add_disclosure(env, 1)
    add_disclosure(env, 2)
    log_of(env).checkpoint()
    with env.engine.begin() as conn:
        conn.execute(sa.text("UPDATE log_entries SET body = replace(body, 'Ethics', 'Ethicz') WHERE seq = 0"))
    async with signed_in(env) as client:
        token = csrf((await client.get("/ui/")).text)
        await client.post("/ui/log/verify", data={"csrf_token": token}, headers=SAME_ORIGIN)
        after = (await client.get("/ui/")).text
    assert "FAILED" in after and "log TAMPERED: entry 0" in after


async def test_agreements_page_shows_status_usage_and_links(env: Env) -> None:
    add_disclosure(env, 1, rows=40)
    add_disclosure(env, 2, rows=2, started_at=NOW - dt.timedelta(days=1))  # yesterday: not today's usage
    async with env.client() as client:
        page = await client.get("/ui/agreements", headers=env.auth("compliance"))
    text = page.text
    assert page.status_code == 200
    research = text[text.index(">research-continuity <") : text.index(">research-expired <")]
    assert "status-active" in research and "pku-education-lab" in research
    assert "li.ming@registry.example" in research
    assert re.search(r"<dt>Requests today</dt>\s*<dd>1; last minute", research)
    assert 'value="40"' in research and "40 of 20,000,000" in research
    # The dashboard's own risk page, which the compliance key may read (it used to link an API answering it 403).
    assert 'href="/ui/agreements/research-continuity/risk"' in research
    assert "DP budget left</dt>\n    <dd>n/a" in research
    expired = text[text.index(">research-expired <") :]
    assert "status-expired" in expired[:200]
    assert "not yet valid" in text


async def test_unknown_pages_and_methods_render_html_errors(env: Env) -> None:
    async with env.client() as client:
        missing = await client.get("/ui/nowhere", headers=env.auth("compliance"))
        method = await client.delete("/ui/subjects", headers=env.auth("compliance"))
        post_anonymous = await client.post("/ui/subjects", data={"subject_id": "C1"})
        slash = await client.get("/ui")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert method.status_code == 405
    assert post_anonymous.status_code == 401 and "Sign-in required" in post_anonymous.text
    assert slash.status_code in (307, 308) and slash.headers["location"].endswith("/ui/")


# -- charts (pure) -----------------------------------------------------------------------------------------------------
def test_chart_scale_and_escaping() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 2, 3, 7, 10, 11, 99, 101, 4999, 5001)] == [
        1,
        1,
        2,
        5,
        10,
        10,
        20,
        100,
        200,
        5000,
        10000,
    ]
    days = [dt.date(2026, 11, d) for d in range(1, 4)]
    svg = stacked_bars(
        days, [Series("<b>x</b>", (1, 0, 2)), Series("y", (3, 0, 0))], title="T & t", unit="rows", chart_id="c"
    )
    assert svg.count("<rect") == 3  # zero values draw nothing
    assert "&lt;b&gt;x&lt;/b&gt;" in svg and "<b>" not in svg
    assert "T &amp; t" in svg and "6 rows over 3 days; the busiest day was 2026-11-01 with 4." in svg
    assert "No rows in these 3 days." in stacked_bars(days, [], title="t", unit="rows", chart_id="e")
    assert json.dumps(str(svg))  # plain text, serialisable


async def test_agreements_page_shows_the_privacy_budget_left(env: Env, catalog: Any) -> None:
    from gateway.controls.budget import PrivacyBudget
    from policies import parse_agreement

    text = (
        "id: dp-stats\nversion: 1\ntitle: Private counts\nparties: [stats-bureau]\npurpose: official_statistics\n"
        "legal_basis: Statistics law\napproved_by: li.ming@registry.example\nvalid_from: 2026-01-01\n"
        "dataset: children\naggregate:\n  dimensions: {gender: keep}\n  measures: [count]\n  min_cell: 10\n"
        "  differential_privacy: {epsilon_total: 1.0, epsilon_per_query: 0.4}\n"
    )
    agreements = env.services.agreements
    assert isinstance(agreements, dict)
    agreements["dp-stats"] = parse_agreement(text, catalog, "dp.yaml")
    async with env.client() as client:
        before = (await client.get("/ui/agreements", headers=env.auth("compliance"))).text
        PrivacyBudget(env.engine).spend("dp-stats", 0.4, 1.0)
        after = (await client.get("/ui/agreements", headers=env.auth("compliance"))).text
    assert "ε 1 left of 1 (0 queries so far)" in before
    assert "ε 0.6 left of 1 (1 query so far)" in after
    assert "n/a (no differential privacy in this agreement)" in after


async def test_the_admin_gets_from_the_dashboard_what_the_api_gives_it(env: Env, registry_path: Path) -> None:
    """One authorization table (gateway/web/authz.py) for both faces: an admin reads neither the disclosure log, nor
    its CSV export, nor a child's accounting, in the API or in the dashboard (it used to in the dashboard)."""
    child_id, _student, limit = env.first_enrolled_released(registry_path)
    first = await extract(env, body={"limit": limit})
    disclosure_id = first.headers["x-disclosure-id"]
    log_of(env).checkpoint()
    async with signed_in(env, "admin") as admin, signed_in(env, "compliance") as officer:
        pages = {
            "log": ("GET", "/ui/disclosures", None),
            "entry": ("GET", f"/ui/disclosures/{disclosure_id}", None),
            "receipt": ("GET", f"/ui/disclosures/{disclosure_id}/receipt.json", None),
            "export": ("GET", "/ui/disclosures/export.csv", None),
            "subjects": ("GET", "/ui/subjects", None),
        }
        for name, (method, path, _body) in pages.items():
            refused = await admin.request(method, path)
            assert refused.status_code == 403, (name, refused.status_code)
            assert child_id not in refused.text and disclosure_id not in refused.text.replace(path, "")
            assert (await officer.request(method, path)).status_code == 200, name
        form = await officer.get("/ui/subjects")
        lookup = await admin.post(
            "/ui/subjects", data={"csrf_token": csrf(form.text), "subject_id": child_id}, headers=SAME_ORIGIN
        )
        assert lookup.status_code == 403 and child_id not in lookup.text
        overview = await admin.get("/ui/")
        assert overview.status_code == 200
        assert "Disclosure log</a>" not in overview.text and "Subject accounting</a>" not in overview.text
        assert "research-continuity (research)" not in overview.text  # no usage counts either
        assert "Disclosure log</a>" in (await officer.get("/ui/")).text
    async with env.client() as api:  # the same answers from the API
        for path in ("/v1/disclosures/export", "/v1/disclosures/totals"):
            assert (await api.get(path, headers=env.auth("admin"))).status_code == 403
        subject = await api.post("/v1/subjects/disclosures", headers=env.auth("admin"), json={"subject_id": child_id})
        assert subject.status_code == 403
