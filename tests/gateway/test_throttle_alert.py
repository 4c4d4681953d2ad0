"""Failed authentication past the throttle's threshold raises an alert: an ``alert.auth_failures`` log entry that
the dashboard's alerts list shows compliance, naming the kind of counter and counts, never an address, a key id or
a key; at most one per counter kind and window, however many sources reach the limit."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from gateway.throttle import AuthThrottle
from tests.gateway.harness import Env
from tests.gateway.test_extract_http import assert_problem

pytestmark = pytest.mark.anyio


def _from(env: Env, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=env.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")


def _guess(n: int) -> str:
    return f"dxg_{base64.b32encode(n.to_bytes(10, 'big')).decode().lower()}_{'x' * 43}"


def alerts(env: Env) -> list[dict[str, object]]:
    env.flush()
    return [e for e in (json.loads(b) for b in env.log_bodies()) if e["type"] == "alert.auth_failures"]


async def test_reaching_the_limit_writes_one_alert_without_the_source(env: Env) -> None:
    limit = env.services.auth_throttle.by_address.limit
    guesses = [_guess(n) for n in range(limit + 5)]
    async with _from(env, "203.0.113.9") as attacker:
        for guess in guesses[: limit - 1]:
            assert_problem(await attacker.get("/v1/agreements", headers={"Authorization": f"Bearer {guess}"}), 401)
        assert alerts(env) == []  # below the threshold: no alert
        await attacker.get("/v1/agreements", headers={"Authorization": f"Bearer {guesses[limit - 1]}"})
        for guess in guesses[limit:]:  # throttled now (429): not counted, no second alert
            assert_problem(await attacker.get("/v1/agreements", headers={"Authorization": f"Bearer {guess}"}), 429)
    (alert,) = alerts(env)
    assert alert["counter"] == "client-address" and alert["limit"] == limit and alert["sources"] == 1
    text = json.dumps(alert)
    for secret in (*guesses, *(g.split("_")[1] for g in guesses), "203.0.113.9", *env.keys.values()):
        assert secret not in text
    # The compliance officer's dashboard lists it (from another address: this one is throttled).
    async with _from(env, "198.51.100.20") as officer:
        overview = await officer.get("/ui/", headers=env.auth("compliance"))
    assert overview.status_code == 200 and "Failed authentications" in overview.text
    assert "203.0.113.9" not in overview.text


async def test_many_sources_make_one_alert_per_window_that_counts_them(env: Env) -> None:
    limit = env.services.auth_throttle.by_address.limit
    for source in range(3):
        async with _from(env, f"192.0.2.{source + 1}") as attacker:
            for n in range(limit):
                guess = _guess(1000 * source + n)
                await attacker.get("/v1/agreements", headers={"Authorization": f"Bearer {guess}"})
    # 3 addresses reached the limit within one window: one entry (the other two are counted in the next one)
    (alert,) = alerts(env)
    assert alert["sources"] == 1 and env.services.auth_throttle.by_address.limit == limit


def test_the_alert_is_due_again_after_a_window_with_the_sources_in_between() -> None:
    now = [0.0]
    throttle = AuthThrottle(per_address=2, per_key_id=100, window_s=60.0, clock=lambda: now[0])
    due = [throttle.failed("a", None), throttle.failed("a", None)]
    assert due[0] == [] and [d.sources for d in due[1]] == [1]
    assert throttle.failed("b", None) == [] and throttle.failed("b", None) == []  # same window: suppressed
    now[0] = 61.0
    assert throttle.failed("c", None) == []
    (again,) = throttle.failed("c", None)
    assert again.counter == "client-address" and again.sources == 2  # b (suppressed) and c
    assert again.entry() == {
        "type": "alert.auth_failures",
        "counter": "client-address",
        "limit": 2,
        "window_s": 60,
        "sources": 2,
    }  # the addresses themselves are nowhere in it


async def test_an_alert_that_cannot_be_written_does_not_turn_a_401_into_a_500(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = env.services.auth_throttle.by_key_id.limit

    def broken(entry: object) -> int:
        raise RuntimeError("log down")

    monkeypatch.setattr(env.services.log, "append_event", broken)
    forged = env.keys["compliance"][:-4] + "AAAA"
    statuses = []
    for n in range(limit):
        async with _from(env, f"198.18.0.{n + 1}") as client:
            statuses.append(
                (await client.get("/v1/disclosures", headers={"Authorization": f"Bearer {forged}"})).status_code
            )
    assert statuses == [401] * limit
