"""The dashboard's attribution list: compliance sees every logged attribution; an admin does not; nothing of the
leaked file or the registry is shown, and what the operator typed is escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.audit.reader import LogReader
from gateway.controls.attribution import record_attribution
from tests.gateway.harness import Env
from tests.gateway.test_attribution import assert_no_identifiers, extract, run

pytestmark = pytest.mark.anyio


async def test_dashboard_lists_attributions_for_compliance_only(sqlite_env: Env, tmp_path: Path) -> None:
    async with sqlite_env.client() as client:
        empty = await client.get("/ui/attributions", headers=sqlite_env.auth("compliance"))
    assert empty.status_code == 200 and "No attribution has been logged" in empty.text
    disclosure, text = await extract(sqlite_env, "research", "research-continuity", {})
    leak = tmp_path / "leak.ndjson"
    leak.write_text(text, encoding="utf-8")
    result = run(sqlite_env, leak)
    reader = LogReader(sqlite_env.engine)
    record_attribution(sqlite_env.services.log, reader, result, requested_by="co", reason="<script>alert(1)</script>")
    async with sqlite_env.client() as client:
        page = await client.get("/ui/attributions", headers=sqlite_env.auth("compliance"))
        overview = await client.get("/ui/", headers=sqlite_env.auth("compliance"))
        denied = await client.get("/ui/attributions", headers=sqlite_env.auth("admin"))
        requester = await client.get("/ui/attributions", headers=sqlite_env.auth("research"))
    assert page.status_code == 200
    assert disclosure in page.text and "pku-education-lab" in page.text and "attributed" in page.text
    assert result.report["file"]["sha256"] in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert 'href="/ui/attributions"' in overview.text  # in the navigation
    assert denied.status_code == 403 and disclosure not in denied.text
    assert requester.status_code == 403 and disclosure not in requester.text  # the dashboard is not for parties
    assert_no_identifiers(page.text)
