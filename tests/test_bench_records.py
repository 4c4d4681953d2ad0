"""The records benchmark's own logic: the floor app writes one durable row per request, and the verdict says which
way a target is met. No figure is asserted (no timing in unit tests)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from bench.report import records_verdict


def test_verdict_says_whether_the_absolute_or_the_ratio_met_it() -> None:
    assert records_verdict({"requests_per_s": 1200, "ratio_to_floor": 0.3, "p99_ms": 40}) == "met by absolute"
    assert records_verdict({"requests_per_s": 700, "ratio_to_floor": 0.6, "p99_ms": 40}) == "met by ratio"
    assert records_verdict({"requests_per_s": 700, "ratio_to_floor": 0.4, "p99_ms": 40}) == "**not met**"
    # the p99 bound holds either way: a fast or well-placed rate with a long tail is not met
    assert records_verdict({"requests_per_s": 5000, "ratio_to_floor": 0.9, "p99_ms": 50}) == "**not met**"
    # no floor measured (--no-floor): only the absolute figure can meet it
    assert records_verdict({"requests_per_s": 700, "p99_ms": 10}) == "**not met**"
    assert records_verdict({"requests_per_s": None, "p99_ms": None}) == "**not met**"


@pytest.mark.anyio
async def test_floor_app_commits_one_row_per_request_with_the_gateways_durability(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import floor_app

    url = f"sqlite:///{tmp_path / 'floor.db'}"
    monkeypatch.setenv("DXG_FLOOR_URL", url)
    monkeypatch.setattr(floor_app, "_local", threading.local())  # no connection left from another test
    floor_app.prepare(url)
    transport = httpx.ASGITransport(app=floor_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
        for n in range(5):
            response = await client.get(f"/v1/agreements/bench-passthrough/records/C{n:08d}")
            assert response.status_code == 200
            assert response.json()["child_id"] == f"C{n:08d}"
    conn = floor_app._connect(url)  # what every request thread opens
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL, as gateway/db/engine.py sets it
    finally:
        conn.close()
    # committed, not pending in an open transaction: another connection sees every row
    other = sqlite3.connect(tmp_path / "floor.db")
    try:
        paths = [r[0] for r in other.execute("SELECT path FROM floor_writes ORDER BY id")]
    finally:
        other.close()
    assert paths == [f"/v1/agreements/bench-passthrough/records/C{n:08d}" for n in range(5)]
