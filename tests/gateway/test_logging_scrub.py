"""No personal data or secrets reach the logs: seed known values through real requests and inspect every line."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from gateway.applog import _PATTERNS, configure_logging, get_logger, scrub_value
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(fmt="json", level="debug", stream=stream)
    yield stream
    structlog.reset_defaults()


def test_scrubber_patterns() -> None:
    assert scrub_value("id 11010519491231002X here") == "id [id] here"
    assert "[phone]" in scrub_value("call +86 138-1234-5678 now")
    assert "[email]" in scrub_value("mail zhang.wei@example.cn")
    assert "[api-key]" in scrub_value("key dxg_abcdefghijklmnop_" + "A" * 43)
    assert scrub_value("张伟的家长") == "[cjk]"
    assert scrub_value("GET /v1/agreements status=200") == "GET /v1/agreements status=200"


def test_issued_ids_survive_and_other_values_under_id_keys_do_not(captured: io.StringIO) -> None:
    # 9+ digit runs inside a hex id used to be rewritten to [number], breaking log-to-entry correlation.
    issued = "01a224f67f822293927a68bd9e8dee26"
    crafted = "13812345678-not-an-issued-id"
    get_logger("t").info("request", disclosure_id=issued, request_id=crafted, other=issued)
    line = json.loads(captured.getvalue().splitlines()[-1])
    assert line["disclosure_id"] == issued
    assert "13812345678" not in line["request_id"]
    assert line["other"] != issued  # the exemption is for the id keys only


def test_logger_drops_secret_keys(captured: io.StringIO) -> None:
    get_logger().info("event", authorization="Bearer abc", api_key="dxg_x", filters={"a": 1}, rows=3)
    line = json.loads(captured.getvalue().splitlines()[-1])
    assert line["authorization"] == line["api_key"] == line["filters"] == "[dropped]"
    assert line["rows"] == 3


async def test_seeded_values_never_reach_logs(sqlite_env: Env, registry_path: Path, captured: io.StringIO) -> None:
    conn = sqlite3.connect(registry_path)
    child = conn.execute(
        "SELECT child_id, national_id, name, guardian_phone, student_number FROM child_registry "
        "WHERE status = 'enrolled' LIMIT 1"
    ).fetchone()
    conn.close()
    child_id, national_id, name, phone, student = child
    api_key = sqlite_env.keys["research"]
    async with sqlite_env.client() as client:
        await client.post(
            "/v1/agreements/research-continuity/extract",
            headers=sqlite_env.auth("research"),
            json={"filters": {"status": {"eq": national_id}}},
        )
        await client.post(
            "/v1/agreements/research-continuity/extract",
            headers=sqlite_env.auth("research"),
            json={"filters": {"birth_date": {"gte": name}}},
        )
        await client.post(
            "/v1/agreements/school-transfer/extract",
            headers=sqlite_env.auth("school"),
            json={"filters": {"student_number": {"eq": student}}},
        )
        await client.post("/v1/agreements/research-continuity/extract", headers=sqlite_env.auth("research"), json={})
        await client.post(f"/v1/agreements/{phone}/extract", headers=sqlite_env.auth("research"), json={})
        await client.get("/v1/agreements", headers={"Authorization": f"Bearer {api_key}x"})
    text = captured.getvalue()
    assert text.count('"event": "request"') >= 6 or text.count('"event":"request"') >= 6
    for value in (child_id, national_id, name, phone, student, api_key, api_key[:24]):
        assert value not in text, "a seeded value reached the logs"


_PIECES = st.sampled_from(
    [
        "13812345678",
        "+86 138-1234-5678",
        "11010519491231002X",
        "G11010519491231002X",
        "a@b.cn",
        "BeArEr x",
        "dxg_",
        "123456789",
        "王小明",
        "12",
        " ",
        "-",
        "x",
        "/v1/agreements/{id}",
    ]
)


@given(st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=6).map("".join))
def test_the_quick_pre_check_never_changes_what_is_scrubbed(value: str) -> None:
    slow = value
    for pattern, replacement in _PATTERNS:
        slow = pattern.sub(replacement, slow)
    assert scrub_value(value) == slow
