"""The compliance dashboard end to end, in headless Chromium driven by Playwright.

The gateway runs under uvicorn on a free loopback port with a small demo deployment; disclosures are made through
the real API first. The browser signs in, filters the log, opens an entry (receipt verified), runs a subject lookup,
verifies the log, and is refused with a requester's key; every page is screenshotted under ``test-artifacts/ui/``.

Chromium comes from the distribution (``apt-get install chromium``), never from ``playwright install``. Without it,
or without Playwright, these tests skip with the reason, unless ``DXG_REQUIRE_BROWSER=1`` (set by CI), which makes
them fail instead, so CI can never pass by silently skipping them.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = os.environ.get("DXG_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("DXG_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 800}


def _browser_problem() -> str | None:
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("Playwright for Python is not installed (pip install -e '.[dev]')")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set DXG_CHROMIUM)")
    return "; ".join(problems) or None


_PROBLEM = _browser_problem()
if _PROBLEM is not None and not REQUIRE_BROWSER:
    pytest.skip(f"browser tests skipped: {_PROBLEM}", allow_module_level=True)
if _PROBLEM is None:
    from playwright.sync_api import Browser, Page, expect, sync_playwright


@dataclass
class Live:
    url: str
    keys: dict[str, str]  # principal -> API key
    child_id: str
    extract_id: str


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    import uvicorn

    from gateway.demo.deployment import build_demo
    from gateway.settings import settings_for
    from gateway.web.app import create_app
    from gateway.wiring import build_services

    directory = tmp_path_factory.mktemp("ui-demo") / "demo"
    # 20,000 children: the demo research agreement's k-anonymity refuses extracts of a few hundred (docs/
    # disclosure-control.md 0.4); at this size it withholds 2% and releases.
    build_demo(directory, rows=20_000)
    services = build_services(settings_for(directory, None))
    app = create_app(services)
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    credentials = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))
    keys = {c["principal"]: c["api_key"] for c in credentials}
    conn = sqlite3.connect(directory / "registry.db")
    child_id, student = conn.execute(
        "SELECT child_id, student_number FROM children WHERE status = 'enrolled' ORDER BY child_id LIMIT 1"
    ).fetchone()
    conn.close()
    # A few real disclosures through the API: two research extracts, one school transfer of one child.
    with httpx.Client(base_url=url, timeout=30) as client:

        def post(who: str, agreement: str, body: dict[str, Any]) -> httpx.Response:
            response = client.post(
                f"/v1/agreements/{agreement}/extract", json=body, headers={"Authorization": f"Bearer {keys[who]}"}
            )
            assert response.status_code == 200, response.text
            return response

        first = post("pku-education-lab", "research-continuity", {"limit": 5})
        post("pku-education-lab", "research-continuity", {"limit": 20, "filters": {"status": {"eq": "enrolled"}}})
        post("receiving-school", "school-transfer", {"filters": {"student_number": {"eq": student}}})
    yield Live(url, keys, child_id, first.headers["x-disclosure-id"])
    server.should_exit = True
    thread.join(timeout=15)
    services.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if _PROBLEM is not None:
        # CI sets DXG_REQUIRE_BROWSER=1: every browser test fails with the reason instead of passing by skipping.
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
    # A CSP violation or a failed asset shows up as a console error: the pages must produce none.
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield tab
    context.close()
    assert not [e for e in errors if "status of 403" not in e and "status of 401" not in e], errors


def _sign_in(page: Page, key: str) -> None:
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def _shot(page: Page, name: str) -> None:
    page.wait_for_load_state("load")  # the stylesheet too: a full-page size measured before it is wrong
    page.evaluate("window.scrollTo(0, 0)")  # after a #fragment jump, a full-page shot would start mid-page
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-first-screen.png"))  # what a laptop shows without scrolling


def test_sign_in_and_overview(page: Page, live: Live) -> None:
    page.goto("/ui/agreements")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    _shot(page, "01-sign-in")
    page.get_by_label("API key").fill(live.keys["compliance-officer"])
    page.get_by_role("button", name="Sign in").click()
    # Back to the page asked for, then to the overview.
    expect(page.get_by_role("heading", name="Agreements", exact=True)).to_be_visible()
    _shot(page, "05-agreements")
    cookie = next(c for c in page.context.cookies() if c["name"] == "dxg_ui_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    page.get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(2)
    expect(page.get_by_role("rowheader", name="research-continuity", exact=True)).to_be_visible()
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator("#verification-summary")).to_contain_text("log OK:")
    _shot(page, "02-overview")


def test_keyboard_skip_link_reaches_main(page: Page, live: Live) -> None:
    _sign_in(page, live.keys["compliance-officer"])
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.goto("/ui/agreements")
    expect(page.get_by_role("heading", name="Agreements", exact=True)).to_be_visible()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to main content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_filter_the_log_and_open_an_entry_with_a_verified_receipt(page: Page, live: Live) -> None:
    _sign_in(page, live.keys["compliance-officer"])
    page.get_by_role("link", name="Disclosure log").click()
    rows = page.locator("#disclosures tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label("Agreement").select_option("research-continuity")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"/ui/disclosures\?.*agreement=research-continuity"))
    expect(rows).to_have_count(2)
    for text in rows.all_inner_texts():
        assert "research-continuity" in text and "receiving-school" not in text
    _shot(page, "03-disclosure-log")
    page.locator(f'a[href="/ui/disclosures/{live.extract_id}"]').click()
    expect(page.locator("#receipt-status")).to_contain_text("Receipt verified.")
    expect(page.get_by_role("cell", name="generalize to year").first).to_be_visible()
    # What the signed entries say, beside the table's copy (gateway/web/ui/signed_entry.py).
    expect(page.locator("#projection-status")).to_contain_text("agrees with the signed log entries")
    expect(page.locator("#signed-entry")).to_contain_text("pku-education-lab")
    _shot(page, "04-disclosure-entry")


def test_subject_lookup_posts_the_id_and_prints(page: Page, live: Live) -> None:
    _sign_in(page, live.keys["compliance-officer"])
    page.get_by_role("link", name="Subject accounting").click()
    page.get_by_label("Child's registry id").fill(live.child_id)
    page.get_by_role("button", name="Look up disclosures").click()
    table = page.locator("#accounting")
    expect(table).to_contain_text("receiving-school")
    expect(table).to_contain_text("enrollment_transfer")
    expect(page.locator("#accounting-basis")).to_contain_text("latest signed checkpoint")
    assert live.child_id not in page.url and page.url.endswith("/ui/subjects")
    _shot(page, "06-subject-accounting")
    page.emulate_media(media="print")
    expect(page.get_by_role("navigation", name="Dashboard")).to_be_hidden()
    _shot(page, "07-subject-accounting-print")


def test_requester_key_is_refused(page: Page, live: Live) -> None:
    _sign_in(page, live.keys["pku-education-lab"])
    expect(page.get_by_role("alert")).to_contain_text("cannot sign in here")
    assert not [c for c in page.context.cookies() if c["name"] == "dxg_ui_session"]
    _shot(page, "08-requester-refused")
    page.goto("/ui/disclosures")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_sign_out(page: Page, live: Live) -> None:
    _sign_in(page, live.keys["registry-admin"])
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("You have signed out")
    page.goto("/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_dual_control_and_witness_pages(page: Page, live: Live) -> None:
    # The attack: an admin's request whose reason is a script. In a real browser it must stay text and never run.
    reason = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"
    with httpx.Client(base_url=live.url, timeout=30) as client:
        made = client.post(
            "/v1/admin/actions",
            json={"action": "keys.rotate_master", "reason": reason},
            headers={"Authorization": f"Bearer {live.keys['registry-admin']}"},
        )
    assert made.status_code == 202, made.text
    _sign_in(page, live.keys["compliance-officer"])
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("link", name="Dual control").click()
    expect(page.get_by_role("heading", name="Requests under dual control")).to_be_visible()
    row = page.locator(f"#action-{made.json()['id']}")
    expect(row).to_contain_text(reason)
    expect(row.locator("td.state")).to_contain_text("pending")
    assert page.evaluate("window.__pwned === undefined")
    expect(page.get_by_role("button", name=re.compile("confirm", re.I))).to_have_count(0)
    _shot(page, "09-dual-control")
    page.get_by_role("link", name="Witnesses").click()
    expect(page.get_by_role("heading", name="Witnesses")).to_be_visible()
    expect(page.locator("#no-witnesses")).to_contain_text("No witnesses configured")  # the demo configures none
    _shot(page, "10-witnesses")
