"""The Attributions page in headless Chromium: a compliance officer signs in, opens it from the navigation, finds
the logged attribution and follows it to the named disclosure, whose receipt verifies (test_ui_browser.py has the
browser set-up; the same skip/fail rule applies: DXG_REQUIRE_BROWSER=1 turns a missing browser into a failure)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.audit.reader import LogReader
from gateway.controls.attribution import record_attribution
from policies import Catalog
from tests.gateway.harness import build_env, sqlite_url
from tests.gateway.test_attribution import run
from tests.gateway.test_ui_browser import _PROBLEM, ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, LAPTOP, _free_socket

if _PROBLEM is None:
    from playwright.sync_api import expect, sync_playwright


@dataclass
class Live:
    url: str
    compliance_key: str
    disclosure_id: str
    sha256: str


@pytest.fixture
def live(catalog: Catalog, registry_path: Path, tmp_path: Path) -> Iterator[Live]:
    import uvicorn

    env = build_env(catalog, sqlite_url(tmp_path / "gateway.db"), sqlite_url(registry_path))
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(env.app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    response = httpx.post(
        f"{url}/v1/agreements/research-continuity/extract", json={}, headers=env.auth("research"), timeout=30
    )
    assert response.status_code == 200, response.text
    leak = tmp_path / "leak.csv"
    tokens = [json.loads(line)["child_id"] for line in response.text.splitlines()[:50]]
    leak.write_text("token\n" + "\n".join(tokens) + "\n", encoding="utf-8")
    result = run(env, leak)
    record_attribution(env.services.log, LogReader(env.engine), result, requested_by="compliance-officer")
    yield Live(url, env.keys["compliance"], response.headers["x-disclosure-id"], result.report["file"]["sha256"])
    server.should_exit = True
    thread.join(timeout=15)
    env.services.close()
    env.engine.dispose()


def test_attributions_page_in_the_browser(live: Live) -> None:
    if _PROBLEM is not None:
        pytest.fail(f"DXG_REQUIRE_BROWSER=1 but the browser tests cannot run: {_PROBLEM}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=LAPTOP, base_url=live.url).new_page()
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.goto("/ui/")
            page.get_by_label("API key").fill(live.compliance_key)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="Attributions").click()
            expect(page.get_by_role("heading", name="Attributions")).to_be_visible()
            row = page.locator("#attributions tbody tr")
            expect(row).to_have_count(1)
            expect(row).to_contain_text("compliance-officer")
            expect(row).to_contain_text("attributed")
            expect(row).to_contain_text("pku-education-lab")
            assert page.locator(f'code[title="{live.sha256}"]').count() == 1
            page.wait_for_load_state("load")
            page.screenshot(path=str(ARTIFACTS / "07-attributions.png"), full_page=True)
            page.locator(f'a[href="/ui/disclosures/{live.disclosure_id}"]').click()
            expect(page).to_have_url(re.compile(f"/ui/disclosures/{live.disclosure_id}$"))
            expect(page.locator("#receipt-status")).to_contain_text("Receipt verified.")
            assert not errors, errors
        finally:
            browser.close()
