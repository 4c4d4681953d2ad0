"""Agreement review, alert acknowledgement and lookup by national ID, end to end in headless Chromium (issue 17).

Its own small demo deployment (the other browser tests' data stay as they are): version 2 of the school-transfer
agreement applied as a draft by the administrator, another by a principal who is both administrator and approver,
a volume alert in the log, and one school transfer of a child whose national ID ends in X. Screenshots go to
``test-artifacts/ui/``. Skips (or, with ``DXG_REQUIRE_BROWSER=1``, fails) like ``test_ui_browser.py``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.gateway.test_ui_browser import _PROBLEM, ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LAPTOP, _free_socket

if _PROBLEM is None:
    from playwright.sync_api import Browser, Page, expect, sync_playwright

TRANSFER_V2_CHANGE = ("  disability:      keep\n", "  disability:      drop\n")


@dataclass
class Live:
    url: str
    keys: dict[str, str]
    national_id: str
    transfer_id: str


def _server(app: object) -> tuple[object, threading.Thread, str]:
    import uvicorn

    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from gateway.auth import PrincipalStore
    from gateway.demo.deployment import build_demo
    from gateway.settings import settings_for
    from gateway.web.app import create_app
    from gateway.wiring import build_services

    directory = tmp_path_factory.mktemp("ui-review-demo") / "demo"
    build_demo(directory, rows=2_000)
    services = build_services(settings_for(directory, None))
    server, thread, url = _server(create_app(services))
    credentials = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))
    keys = {c["principal"]: c["api_key"] for c in credentials}
    store = services.authenticator
    assert isinstance(store, PrincipalStore)
    keys["admin-approver"] = store.create("admin-approver", {"admin", "approver"})
    conn = sqlite3.connect(directory / "registry.db")
    national_id, student = conn.execute(
        "SELECT national_id, student_number FROM children WHERE status = 'enrolled' AND national_id LIKE '%X' "
        "ORDER BY child_id LIMIT 1"
    ).fetchone()
    conn.close()
    text = (directory / "agreements" / "school-transfer.yaml").read_text(encoding="utf-8")
    assert TRANSFER_V2_CHANGE[0] in text
    v2 = re.sub(r"^version: \d+", "version: 2", text, flags=re.M).replace(*TRANSFER_V2_CHANGE)
    if not re.search(r"^version:", v2, flags=re.M):
        v2 = v2.replace("id: school-transfer\n", "id: school-transfer\nversion: 2\n")
    with httpx.Client(base_url=url, timeout=60) as client:

        def bearer(who: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {keys[who]}"}

        transfer = client.post(
            "/v1/agreements/school-transfer/extract",
            json={"filters": {"student_number": {"eq": student}}},
            headers=bearer("receiving-school"),
        )
        assert transfer.status_code == 200, transfer.text
        yaml = {"Content-Type": "application/yaml"}
        applied = client.post("/v1/admin/agreements", content=v2, headers={**bearer("registry-admin"), **yaml})
        assert applied.status_code == 201, applied.text
        v3 = v2.replace("version: 2", "version: 3").replace("guardian_phone:  keep", "guardian_phone:  drop")
        own = client.post("/v1/admin/agreements", content=v3, headers={**bearer("admin-approver"), **yaml})
        assert own.status_code == 201, own.text
    services.log.append_event(
        {
            "type": "alert.volume",
            "agreement": {"id": "school-transfer", "version": 1},
            "rows": 1,
            "factor": 10,
            "median_rows": 0,
            "baseline_disclosures": 5,
        }
    )
    services.log.flush()
    yield Live(url, keys, str(national_id), transfer.headers["x-disclosure-id"])
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(timeout=15)
    services.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if _PROBLEM is not None:
        pytest.fail(f"DXG_REQUIRE_BROWSER=1 but the browser tests cannot run: {_PROBLEM}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Browser, live: Live) -> Iterator[Page]:
    context = browser.new_context(viewport=LAPTOP, base_url=live.url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield tab
    context.close()
    # The refused approval answers 403 and a risk refusal 409: expected; anything else (CSP, assets) is not.
    assert not [e for e in errors if not re.search(r"status of 40[39]", e)], errors


def _sign_in(page: Page, key: str) -> None:
    page.goto("/ui/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def _shot(page: Page, name: str) -> None:
    page.wait_for_load_state("load")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_approver_reviews_the_diff_and_approves(page: Page, live: Live) -> None:
    _sign_in(page, live.keys["approver-li"])
    # Approvers review agreements; the disclosure log is not theirs.
    expect(page.get_by_role("link", name="Disclosure log")).to_have_count(0)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Agreements").click()
    page.get_by_role("link", name="school-transfer version 2").click()
    expect(page.locator("#version-state")).to_have_text("draft")
    diff = page.locator("#diff-text")
    expect(diff.locator(".diff-del")).to_contain_text(["disability:      keep"])
    expect(diff.locator(".diff-add")).to_contain_text(["disability:      drop"])
    expect(page.locator("#lint-heading")).to_be_visible()
    expect(page.locator("#risk-heading")).to_be_visible()
    _shot(page, "10-review-version")
    page.get_by_role("button", name="Approve version 2").click()
    expect(page.locator("#decision-done")).to_contain_text("approved")
    expect(page.locator("#version-state")).to_have_text("active")
    expect(page.locator("#approved-by")).to_contain_text("approver-li")
    _shot(page, "11-review-approved")
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Agreements").click()
    card = page.locator("article", has=page.get_by_role("heading", name=re.compile(r"^school-transfer")))
    expect(card).to_contain_text("v2 (active, approved by approver-li)")


def test_an_author_cannot_approve_its_own_version(page: Page, live: Live) -> None:
    _sign_in(page, live.keys["admin-approver"])
    page.goto("/ui/agreements/school-transfer/versions/3")
    expect(page.locator("#decide")).to_contain_text("You applied this version")
    page.get_by_role("button", name="Approve version 3").click()
    expect(page.locator("#decision-error")).to_contain_text("another approver must approve it (four eyes)")
    expect(page.locator("#version-state")).to_have_text("draft")
    _shot(page, "12-review-own-version-refused")


def test_compliance_acknowledges_an_alert_with_a_note(page: Page, live: Live) -> None:
    _sign_in(page, live.keys["compliance-officer"])
    row = page.locator("tr", has_text="Volume alert")
    expect(row).to_have_count(1)
    row.get_by_placeholder("Note (logged; no personal data)").fill("Known batch job; confirmed with the school")
    row.get_by_role("button", name="Acknowledge").click()
    acked = page.locator("tr.alert-acked", has_text="Volume alert")
    expect(acked).to_contain_text("acknowledged by compliance-officer")
    expect(acked.locator(".ack-note")).to_have_text("Known batch job; confirmed with the school")
    expect(acked.get_by_role("button", name="Acknowledge")).to_have_count(0)
    _shot(page, "13-alert-acknowledged")


def test_compliance_looks_a_child_up_by_national_id(page: Page, live: Live) -> None:
    _sign_in(page, live.keys["compliance-officer"])
    page.get_by_role("link", name="Subject accounting").click()
    typed = live.national_id[:-1] + "x"  # as a guardian's form often carries it
    page.get_by_label("Child's registry id, national ID or student number").fill(typed)
    page.get_by_role("button", name="Look up disclosures").click()
    table = page.locator("#accounting")
    expect(table).to_contain_text("receiving-school")
    expect(table).to_contain_text("1 disclosure included this child")
    assert live.national_id not in page.content() and typed not in page.content()
    assert page.url.endswith("/ui/subjects")
    _shot(page, "14-subject-by-national-id")
