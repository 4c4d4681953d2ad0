"""Per-agreement quotas (429 + Retry-After, nothing released or logged) and volume alerts."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from policies import parse_agreement
from tests.conftest import TODAY
from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import RESEARCH, disclosure_count, events
from tests.gateway.test_extract_http import assert_problem, ndjson

pytestmark = pytest.mark.anyio
URL = "/v1/agreements/research-quota/extract"


def add_agreement(env: Env, limits: str) -> None:
    text = RESEARCH.replace("id: research-continuity", "id: research-quota")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("limits:")) + f"\nlimits: {limits}\n"
    agreement = parse_agreement(text, env.services.catalog, "quota.yaml")
    env.services.agreements[agreement.id] = agreement  # type: ignore[index]


async def extract(env: Env, body: dict[str, object]) -> httpx.Response:
    async with env.client() as client:
        return await client.post(URL, headers=env.auth("research"), json=body)


async def test_requests_per_minute(env: Env) -> None:
    add_agreement(env, "{requests_per_minute: 2}")
    for _ in range(2):
        assert (await extract(env, {"limit": 1})).status_code == 200
    entries, disclosures = len(env.log_bodies()), disclosure_count(env)
    refused = await extract(env, {"limit": 1})
    body = assert_problem(refused, 429, "rate-limited")
    assert "2 requests per minute" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The check comes before the write-ahead entry: nothing released, nothing logged.
    assert (len(env.log_bodies()), disclosure_count(env)) == (entries, disclosures)


async def test_rows_per_day_caps_then_refuses_until_midnight(env: Env) -> None:
    add_agreement(env, "{rows_per_day: 50}")
    first = await extract(env, {"limit": 30})
    assert len(ndjson(first)) == 30
    capped = await extract(env, {})
    assert len(ndjson(capped)) == 20
    plan = json.loads(env.disclosure(capped.headers["x-disclosure-id"])["plan"])
    assert plan["limit"] == 20
    refused = await extract(env, {"limit": 1})
    assert_problem(refused, 429, "rate-limited")
    assert int(refused.headers["retry-after"]) == 14 * 3600  # the harness clock says 10:00 UTC
    # Tomorrow the quota is back.
    env.services.clock = lambda: dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(9), tzinfo=dt.UTC)
    assert len(ndjson(await extract(env, {"limit": 5}))) == 5


async def test_agreements_without_limits_are_not_counted(env: Env) -> None:
    add_agreement(env, "{max_rows_per_request: 10}")
    for _ in range(3):
        assert (await extract(env, {"limit": 1})).status_code == 200


async def test_volume_far_above_the_usual_raises_an_alert(env: Env) -> None:
    add_agreement(env, "{max_rows_per_request: 1000}")
    for _ in range(5):
        assert len(ndjson(await extract(env, {"limit": 2}))) == 2
    assert events(env, "alert.volume") == []
    normal = await extract(env, {"limit": 15})  # 15 <= 10 x median 2
    assert normal.status_code == 200 and events(env, "alert.volume") == []
    big = await extract(env, {"limit": 300})
    rows = len(ndjson(big))
    assert rows > 20
    (alert,) = events(env, "alert.volume")
    assert alert["disclosure_id"] == big.headers["x-disclosure-id"]
    assert alert["rows"] == rows and alert["median_rows"] == 2 and alert["agreement"]["id"] == "research-quota"
    assert alert["baseline_disclosures"] == 6


async def test_no_alert_without_enough_history(env: Env) -> None:
    add_agreement(env, "{max_rows_per_request: 1000}")
    for _ in range(3):
        await extract(env, {"limit": 1})
    await extract(env, {"limit": 500})
    assert events(env, "alert.volume") == []


async def test_aggregates_are_rate_limited_too(env: Env) -> None:
    from tests.gateway.lifecycle_support import TEXTS

    text = TEXTS["public-statistics.yaml"].replace("id: public-statistics", "id: stats-quota")
    text = text.replace("limits: {requests_per_minute: 30}", "limits: {requests_per_minute: 1}")
    agreement = parse_agreement(text, env.services.catalog, "stats.yaml")
    assert agreement.limits.requests_per_minute == 1
    env.services.agreements[agreement.id] = agreement  # type: ignore[index]
    async with env.client() as client:
        url = "/v1/agreements/stats-quota/aggregate"
        first = await client.post(url, headers=env.auth("stats"), json={"group_by": ["gender"]})
        second = await client.post(url, headers=env.auth("stats"), json={"group_by": ["gender"]})
    assert first.status_code == 200, first.text
    assert_problem(second, 429, "rate-limited")
    assert "retry-after" in second.headers
