"""Attacks from the "no single insider" review, run through the real app; each asserts the attack now fails."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from gateway.applog import configure_logging
from tests.gateway.harness import Env
from tests.gateway.test_extract_http import assert_problem

pytestmark = pytest.mark.anyio

RESEARCH = "/v1/agreements/research-continuity/extract"
NATIONAL_ID = "11010519491231002X"  # the shape of a resident ID number: alphanumeric, 18 characters


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(fmt="json", level="debug", stream=stream)
    yield stream
    structlog.reset_defaults()


# -- 1. client-chosen request ids ---------------------------------------------------------------------------------
@pytest.mark.parametrize("client_id", [NATIONAL_ID, "zhang-wei-19491231", "4f1c2a9e-3b7d-4c1e-9a2b-8d6e5f4a3b2c"])
async def test_a_client_request_id_never_reaches_the_log_verbatim(
    env: Env, captured: io.StringIO, client_id: str
) -> None:
    async with env.client() as client:
        first = await client.post(RESEARCH, headers={**env.auth("research"), "X-Request-Id": client_id}, json={})
        again = await client.post(RESEARCH, headers={**env.auth("research"), "X-Request-Id": client_id}, json={})
        refused = await client.post(
            RESEARCH, headers={**env.auth("research"), "X-Request-Id": client_id}, json={"fields": ["name"]}
        )
    assert first.status_code == again.status_code == 200
    logged = env.disclosure(first.headers["x-disclosure-id"])["request_id"]
    # The response names the id the gateway logged (a keyed hash), not what the client sent.
    assert first.headers["x-request-id"] == logged != client_id
    assert len(logged) == 32 and all(c in "0123456789abcdef" for c in logged)
    # The same client id gives the same logged id: retries stay correlated.
    assert again.headers["x-request-id"] == logged
    problem = assert_problem(refused, 422)
    assert problem["request_id"] == logged
    for text in (*env.log_bodies(), captured.getvalue(), refused.text, json.dumps(dict(first.headers))):
        assert client_id not in text


async def test_without_a_client_id_the_gateway_issues_one(env: Env) -> None:
    async with env.client() as client:
        plain = await client.post(RESEARCH, headers=env.auth("research"), json={})
        huge = await client.post(RESEARCH, headers={**env.auth("research"), "X-Request-Id": "a" * 201}, json={})
    for response in (plain, huge):
        logged = env.disclosure(response.headers["x-disclosure-id"])["request_id"]
        assert response.headers["x-request-id"] == logged
        assert len(logged) == 32
