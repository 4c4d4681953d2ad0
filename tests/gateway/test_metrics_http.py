"""GET /metrics through the real app: the counters move with the requests, the labels are bounded, and nothing a
request carried (a child's id in a path, an API key, a planted identifier) reaches the exposition."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests import _logscan
from tests.gateway.harness import Env
from tests.gateway.test_aggregate_http import DP_STATS, add_agreements
from tests.gateway.test_egress_http import PLANTED_ID, PLANTED_PHONE, make_env, planted
from tests.gateway.test_quotas import add_agreement

pytestmark = pytest.mark.anyio
__all__ = ["make_env"]  # the egress tests' fixture, used here

EXTRACT = "/v1/agreements/research-continuity/extract"
SCHOOL = "/v1/agreements/school-transfer/records/"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(env: Env) -> tuple[str, Samples]:
    async with env.client() as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):  # the official parser: the format is valid
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every label set that includes ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def registry_child(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return dict(conn.execute("SELECT * FROM child_registry WHERE status = 'enrolled' LIMIT 1").fetchone())
    finally:
        conn.close()


async def test_metrics_move_with_requests_and_carry_no_identifier(env: Env, registry_path: Path) -> None:
    _, before = await scrape(env)
    child = registry_child(registry_path)
    add_agreement(env, "{requests_per_minute: 1}")
    add_agreements(env, DP_STATS)
    async with env.client() as client:
        ok = await client.post(EXTRACT, headers=env.auth("research"), json={"limit": 3})
        assert ok.status_code == 200, ok.text
        # A child's registry number and national id in paths: the record route and a path no route matches.
        record = await client.get(SCHOOL + child["child_id"], headers=env.auth("school"))
        assert record.status_code == 200, record.text
        assert (await client.get(f"/v1/lookup/{child['national_id']}", headers=env.auth("school"))).status_code == 404
        # Bad keys: an unknown key (its text must not appear), no key, a malformed header.
        bogus = "dxg_k" + "0" * 10 + "_" + "S3cretPartThatMustNotLeak0123456789"
        _logscan.register_secret(bogus, "API key (bogus)")
        assert (await client.get("/v1/agreements", headers={"Authorization": f"Bearer {bogus}"})).status_code == 401
        assert (await client.get("/v1/agreements")).status_code == 401
        # A quota: the second request in a minute is refused.
        quota = "/v1/agreements/research-quota/extract"
        assert (await client.post(quota, headers=env.auth("research"), json={"limit": 1})).status_code == 200
        assert (await client.post(quota, headers=env.auth("research"), json={"limit": 1})).status_code == 429
        # Methods a client makes up, and a path under the dashboard's mount no route matches: bounded labels.
        for made_up in ("FOOBAR1", "FOOBAR2"):
            assert (await client.request(made_up, "/v1/agreements", headers=env.auth("research"))).status_code == 405
        assert (await client.get(f"/ui/nothing/{child['child_id']}")).status_code == 404
        # A differentially private aggregate spends epsilon 0.4.
        dp = await client.post(
            "/v1/agreements/dp-stats/aggregate", headers=env.auth("stats"), json={"group_by": ["gender"]}
        )
        assert dp.status_code == 200, dp.text
    env.flush()
    text, after = await scrape(env)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    extract_labels = {"method": "POST", "route": "/v1/agreements/{agreement_id}/extract"}
    assert moved("dxg_http_requests_total", **extract_labels, status_class="2xx") == 2
    assert moved("dxg_http_requests_total", **extract_labels, status_class="4xx") == 1
    assert moved("dxg_http_request_duration_seconds_count", **extract_labels) == 3
    records = "/v1/agreements/{agreement_id}/records/{subject_id}"
    assert moved("dxg_http_requests_total", method="GET", route=records, status_class="2xx") == 1
    assert moved("dxg_http_requests_total", route="<unmatched>", status_class="4xx") == 1
    assert moved("dxg_http_requests_total", method="other", route="/v1/agreements", status_class="4xx") == 2
    assert "FOOBAR" not in text and "/ui/ui" not in text
    assert moved("dxg_http_requests_total", method="GET", route="/ui/<unmatched>", status_class="4xx") == 1
    assert moved("dxg_http_problems_total", status="404", code="not-found") == 1  # the dashboard answers HTML
    assert moved("dxg_http_problems_total", status="401", code="unauthenticated") == 2
    assert moved("dxg_http_problems_total", status="429", code="rate-limited") == 1
    assert moved("dxg_auth_failures_total", reason="invalid_key") == 1
    assert moved("dxg_auth_failures_total", reason="missing") == 1
    assert moved("dxg_quota_rejections_total", agreement="research-quota", limit="requests_per_minute") == 1
    assert moved("dxg_dp_budget_spent_epsilon_total", agreement="dp-stats") == pytest.approx(0.4)
    assert value(after, "dxg_dp_budget_remaining_epsilon", agreement="dp-stats") == pytest.approx(0.6)
    # Every disclosure wrote a start and a finish (and the record its subjects): the log's write latency moved.
    assert moved("dxg_disclosure_log_write_seconds_count") >= 8
    assert moved("dxg_disclosure_log_commit_seconds_count") >= 1
    assert value(after, "dxg_disclosure_log_queue_depth") == 0  # flushed: nothing waits
    assert value(after, "dxg_extracts_active") == 0  # every extract is over
    assert value(after, "dxg_disclosure_entries_left_started") == 0

    # Nothing a request carried: the child's ids (the log scan's seeded personal data), the API keys, the paths.
    assert list(_logscan.needles.find(text)) == []
    for leaked in (child["child_id"], child["national_id"], bogus[:16], env.keys["research"][:16]):
        assert leaked not in text
    assert "/v1/lookup" not in text and "127.0.0.1" not in text
    for principal in ("pku-education-lab", "receiving-school", "stats-bureau"):
        assert principal not in text
    # Bounded label sets: every route label is a template (or <unmatched>), every status a class.
    for _name, labels in after:
        shown = dict(labels)
        if "route" in shown:
            assert shown["route"] == "<unmatched>" or shown["route"].startswith("/"), shown
            assert child["child_id"] not in shown["route"]
        if "status_class" in shown:
            assert shown["status_class"] in {"1xx", "2xx", "3xx", "4xx", "5xx"}, shown


async def test_a_disclosure_left_started_shows_after_a_minute(env: Env) -> None:
    async with env.client() as client:
        ok = await client.post(EXTRACT, headers=env.auth("research"), json={"limit": 1})
    assert ok.status_code == 200, ok.text
    env.flush()
    # As a crash would leave it: the disclosure never got its final entry (the row says started).
    with env.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE disclosures SET status = 'started' WHERE id = :i"), {"i": ok.headers["x-disclosure-id"]}
        )
    _, fresh = await scrape(env)
    assert value(fresh, "dxg_disclosure_entries_left_started") == 0  # in flight: not yet "left"
    clock = env.services.clock
    env.services.clock = lambda: clock() + dt.timedelta(minutes=2)
    _, later = await scrape(env)
    assert value(later, "dxg_disclosure_entries_left_started") == 1


async def test_egress_findings_are_counted_by_entity_never_by_value(make_env: Any, registry_path: Path) -> None:
    env = make_env(planted(registry_path, [0, 150]), on_finding="redact")
    _, before = await scrape(env)
    async with env.client() as client:
        response = await client.post(
            "/v1/agreements/research-continuity/extract",
            headers=env.auth("research"),
            json={"fields": ["child_id", "gender"]},
        )
    assert response.status_code == 200, response.text
    text, after = await scrape(env)
    for entity in ("CN_MOBILE", "CN_RESIDENT_ID"):
        moved = value(after, "dxg_egress_findings_total", entity=entity) - value(
            before, "dxg_egress_findings_total", entity=entity
        )
        assert moved == 2, entity
    assert PLANTED_ID not in text and PLANTED_PHONE not in text


def _templates(env: Env) -> set[str]:
    from starlette.routing import Mount, Route

    def under(prefix: str, app: object) -> set[str]:
        while not hasattr(app, "routes") and hasattr(app, "app"):  # a mounted app wrapped in middleware
            app = app.app
        found = {prefix + "/<unmatched>"} if prefix else set()
        for route in getattr(app, "routes", []):
            if isinstance(route, Route):
                found.add(prefix + route.path)
            elif isinstance(route, Mount):  # nested mounts too (the dashboard's /static files)
                found |= under(prefix + route.path, route.app)
        return found

    return under("", env.app) | {"<unmatched>"}


# Marked with a prefix no template, metric name or help text holds, so a hit in the exposition is a leak, not chance.
_SEGMENT = st.text(alphabet=st.characters(codec="ascii", categories=("L", "N")), max_size=20).map(lambda s: "Zq9" + s)
_METHOD = st.one_of(
    st.sampled_from(["GET", "POST", "DELETE"]),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=12).map(lambda s: "ZQ" + s),
)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    requests=st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(["GET", "POST", "DELETE"]),
                st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12),
            ),
            st.lists(_SEGMENT, min_size=1, max_size=5),
            st.sampled_from(["", "/v1", "/v1/agreements", "/ui", "/v1/disclosures"]),
        ),
        min_size=5,
        max_size=15,
    )
)
# The dashboard's own paths every run (random examples found both a matched "/ui/" and its static mount once):
@example(
    requests=[
        ("GET", [""], "/ui"),
        ("GET", ["static", "ui.css"], "/ui"),
        ("GET", ["static", "Zq9x"], "/ui"),
        ("GET", ["disclosures", "Zq9abc"], "/ui"),
        ("ZQX", ["Zq9"], "/ui"),
    ]
)
def test_labels_stay_bounded_whatever_clients_send(sqlite_env: Env, requests: list[tuple[str, list[str], str]]) -> None:
    """Made-up methods and paths under every prefix: each label is a route template, a status class or 'other';
    nothing a client sent becomes a label value."""

    async def run() -> tuple[str, Samples]:
        async with sqlite_env.client() as client:
            for method, segments, prefix in requests:
                await client.request(method, prefix + "/" + "/".join(segments), headers=sqlite_env.auth("compliance"))
        return await scrape(sqlite_env)

    text, samples = anyio.run(run)
    templates = _templates(sqlite_env)
    # the dashboard's own templates, and its static files' mount
    assert {"/ui/", "/ui/disclosures/{disclosure_id}", "/ui/static/<unmatched>"} <= templates
    for _name, labels in samples:
        shown = dict(labels)
        assert shown.get("route", "<unmatched>") in templates, shown
        assert shown.get("method", "GET") in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert "Zq9" not in text and "ZQ" not in text
