"""A client that closes the connection in the middle of its request body: a quiet 400, nothing logged as a
disclosure, no traceback (it used to be a 500 with a raw traceback on stderr, outside the structured log)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import structlog

from gateway.applog import configure_logging
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(fmt="json", level="debug", stream=stream)
    yield stream
    structlog.reset_defaults()


async def _send_half_a_body(env: Env) -> list[dict[str, Any]]:
    messages = iter(
        [
            {"type": "http.request", "body": b'{"filters": {"status": ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        try:
            return next(messages)
        except StopIteration:
            await anyio.sleep(3600)  # nothing more will come
            raise AssertionError("unreachable") from None

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    key = env.keys["research"].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/agreements/research-continuity/extract",
        "raw_path": b"/v1/agreements/research-continuity/extract",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", b"Bearer " + key), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("gateway.test", 80),
    }
    with anyio.fail_after(10):
        await env.app(scope, receive, send)
    return sent


async def test_a_body_cut_short_is_a_quiet_400(env: Env, captured: io.StringIO) -> None:
    sent = await _send_half_a_body(env)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 400
    assert json.loads(body)["type"].endswith("/client-disconnected")
    assert env.log_bodies() == []  # nothing was logged as a disclosure: the body is read before the log
    assert "Traceback" not in captured.getvalue() and "client_disconnected" in captured.getvalue()
