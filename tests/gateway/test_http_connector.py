"""The HTTP registry connector against a REAL upstream (Starlette under uvicorn on a loopback port), through the app."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.connectors.http import CircuitBreaker, HttpConnector, JsonPath, parse_http_registry
from gateway.errors import ConfigError, RegistryTimeoutError, RegistryUnavailableError
from gateway.settings import load_settings
from gateway.wiring import build_connector
from policies import Agreement, Catalog, ExtractRequest, plan_extract
from tests.conftest import TODAY
from tests.gateway.harness import Env, build_env, sqlite_url
from tests.gateway.upstream import SECRET_MARKER, TOKEN, Upstream, serve

pytestmark = pytest.mark.anyio

PATHS = {
    "guardian_name": "guardian.name",
    "guardian_relation": "guardian.relation",
    "guardian_phone": "guardians[0].phone",
    "guardian_national_id": "guardian.national_id",
    "low_income": "support.low_income",
    "disability": "support.disability",
    "migrant": "support.migrant",
    "left_behind": "support.left_behind",
}


def http_settings(path: str = "/children", **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "auth_header": "X-Registry-Key",
        "auth_env": "TEST_REGISTRY_KEY",
        "pagination": "cursor",
        "page_size": 50,
        "fields_param": "fields",
        "timeout_s": 2,
        "connect_timeout_s": 1,
        "retries": 2,
        "backoff_s": 0.01,
        "datasets": {
            "children": {"path": path, "query": ["child_id", "status", "residence_code"], "paths": PATHS},
            # Free-text redaction reads every person_name column of the catalog (its name dictionary) through the
            # connector, so every dataset with one is mapped.
            "subsidies": {"path": "/subsidies", "pagination": "cursor"},
        },
    }
    settings.update(overrides)
    return settings


@pytest.fixture(scope="module")
def upstream(registry_path: Path) -> Iterator[Upstream]:
    server = Upstream(registry_path)
    with serve(server):
        yield server


MakeEnv = Callable[..., Env]


@pytest.fixture
def make_env(catalog: Catalog, upstream: Upstream, tmp_path: Path) -> Iterator[MakeEnv]:
    """Build the real app on an HttpConnector to the test upstream (one gateway database per env)."""
    upstream.reset()
    made: list[Env] = []

    def make(path: str = "/children", *, clock: Callable[[], float] = time.monotonic, **overrides: Any) -> Env:
        config = parse_http_registry(http_settings(path, **overrides), "gateway.yaml", tmp_path)
        connector = HttpConnector(upstream.base_url, config, env={"TEST_REGISTRY_KEY": TOKEN}, clock=clock)
        env = build_env(catalog, sqlite_url(tmp_path / f"gateway{len(made)}.db"), connector=connector)
        env.extra["connector"] = connector
        made.append(env)
        return env

    yield make
    for env in made:
        env.services.close()
        env.engine.dispose()


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + code), body
    assert SECRET_MARKER not in response.text  # no upstream body is ever passed through
    return body


def entries(env: Env) -> list[dict[str, Any]]:
    with env.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text("SELECT * FROM disclosures ORDER BY start_seq")).mappings()]


def registry_count(path: Path, where: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM children WHERE {where}").fetchone()[0])  # noqa: S608 - constant test conditions
    finally:
        conn.close()


async def post(env: Env, url: str, body: Any, who: str) -> httpx.Response:
    async with env.client() as client:
        return await client.post(url, headers=env.auth(who), json=body)


# -- the same answers as the SQL connector -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("agreement", "who", "body"),
    [
        ("school-transfer", "school", {}),
        ("research-continuity", "research", {"filters": {"status": {"eq": "enrolled"}}}),
        ("finance-subsidy", "finance", {"filters": {"residence_code": {"eq": "340104"}}}),
    ],
)
async def test_extracts_over_http_equal_extracts_over_sql(
    make_env: MakeEnv, sqlite_env: Env, upstream: Upstream, agreement: str, who: str, body: dict[str, Any]
) -> None:
    env = make_env()
    url = f"/v1/agreements/{agreement}/extract"
    over_http = await post(env, url, body, who)
    over_sql = await post(sqlite_env, url, body, who)
    assert over_http.status_code == 200 == over_sql.status_code, over_http.text
    http_rows, sql_rows = ndjson(over_http), ndjson(over_sql)
    assert len(http_rows) == len(sql_rows) >= 10
    if agreement == "research-continuity":
        # Tokens are keyed per deployment (each env has its own master key): compare everything else.
        for rows in (http_rows, sql_rows):
            for r in rows:
                r.pop("child_id")
        assert sorted(map(json.dumps, http_rows)) == sorted(map(json.dumps, sql_rows))
        # Two conditions on status (scope `in` + filter `eq`): none pushed down, every page read and filtered here,
        # twice: k-anonymity counts the classes over the whole result before releasing any of it.
        pages = [q for _, q in upstream.seen if "birth_date" in q["fields"]]
        assert len(pages) == 2 * (600 // 50) and all("status" not in q for q in pages)
    else:
        # Each env has its own keys, so its own release order: compare the rows, not their order.
        assert sorted(http_rows, key=lambda r: r["child_id"]) == sorted(sql_rows, key=lambda r: r["child_id"])
    for path, params in upstream.seen:
        if path == "/children":
            assert set(params["fields"].split(",")) <= {*upstream.records[0]} and "internal" not in params["fields"]
    entry = env.disclosure(over_http.headers["x-disclosure-id"])
    assert entry["status"] == "completed" and entry["rows"] == len(http_rows)


async def test_only_lone_eq_conditions_are_pushed_down(make_env: MakeEnv, upstream: Upstream) -> None:
    env = make_env()
    response = await post(
        env, "/v1/agreements/finance-subsidy/extract", {"filters": {"residence_code": {"eq": "340104"}}}, "finance"
    )
    assert response.status_code == 200
    params = upstream.seen[0][1]
    # row scope low_income eq true has no query parameter configured; status eq enrolled and the filter do.
    assert params["status"] == "enrolled" and params["residence_code"] == "340104"
    assert "low_income" not in params and params["limit"] == "50"
    upstream.reset()
    response = await post(env, "/v1/agreements/school-transfer/extract", {}, "school")
    assert response.status_code == 200
    assert "status" not in upstream.seen[0][1]  # an `in` condition is filtered locally


async def test_records_and_verify_over_http(make_env: MakeEnv, upstream: Upstream, registry_path: Path) -> None:
    env = make_env()
    child = next(r for r in upstream.records if r["status"] == "enrolled" and r["support"]["low_income"])
    async with env.client() as client:
        record = await client.get(
            f"/v1/agreements/school-transfer/records/{child['child_id']}", headers=env.auth("school")
        )
        outside = next(r for r in upstream.records if r["status"] == "withdrawn")
        missing = await client.get(
            f"/v1/agreements/school-transfer/records/{outside['child_id']}", headers=env.auth("school")
        )
        yes = await client.post(
            "/v1/agreements/finance-subsidy/verify",
            headers=env.auth("finance"),
            json={
                "subject_id": child["child_id"],
                "claims": {"low_income": True, "residence_code": child["residence_code"]},
            },
        )
    assert record.status_code == 200, record.text
    body = record.json()
    assert body["guardian_phone"] == child["guardians"][0]["phone"]  # guardians[0].phone
    assert body["guardian_name"] == child["guardian"]["name"]  # guardian.name
    assert body["disability"] is child["support"]["disability"]
    assert upstream.seen[0][1]["child_id"] == child["child_id"]  # the subject is pushed down
    problem(missing, 404, "not-found")
    assert yes.json() == {"match": True}


async def test_extra_upstream_fields_and_headers_never_reach_the_requester(
    make_env: MakeEnv, registry_path: Path
) -> None:
    # /extra ignores `fields` and every filter, and adds fields and a header no agreement releases.
    env = make_env("/extra/children")
    response = await post(env, "/v1/agreements/school-transfer/extract", {}, "school")
    assert response.status_code == 200
    rows = ndjson(response)
    assert SECRET_MARKER not in response.text and "internal" not in response.text
    assert not any(SECRET_MARKER in v for v in response.headers.values())
    assert all(list(r) == list(rows[0]) for r in rows)
    assert set(rows[0]) == {
        "child_id", "student_number", "name", "gender", "birth_date", "guardian_name", "guardian_phone",
        "residence_code", "kindergarten_id", "disability",
    }  # fmt: skip
    research = await post(env, "/v1/agreements/research-continuity/extract", {}, "research")
    assert SECRET_MARKER not in research.text and "internal" not in research.text
    # The upstream ignored the status filter: the row scope was still enforced by the gateway.
    assert {r["status"] for r in ndjson(research)} == {"enrolled", "transferred_out", "graduated"}
    assert len(ndjson(research)) == registry_count(registry_path, "status != 'withdrawn'") < 600
    finance = await post(
        env, "/v1/agreements/finance-subsidy/extract", {"filters": {"residence_code": {"eq": "340104"}}}, "finance"
    )
    expected = registry_count(
        registry_path,
        "status = 'enrolled' AND residence_code = '340104' AND child_id IN "
        "(SELECT child_id FROM support_status WHERE low_income = 1)",
    )
    assert len(ndjson(finance)) == expected > 0
    assert {r["residence_code"] for r in ndjson(finance)} == {"340104"}


async def test_offset_pagination_with_bare_list_pages(
    make_env: MakeEnv, upstream: Upstream, registry_path: Path
) -> None:
    env = make_env("/children-offset", pagination="offset", page_size=64)
    response = await post(env, "/v1/agreements/research-continuity/extract", {}, "research")
    assert response.status_code == 200
    assert len(ndjson(response)) == registry_count(registry_path, "status != 'withdrawn'")
    offsets = [q.get("offset", "0") for path, q in upstream.seen if "birth_date" in q.get("fields", "")]
    assert offsets == [str(64 * i) for i in range(600 // 64 + 1)] * 2  # k-anonymity's two passes
    upstream.reset()
    # school-transfer releases at most 10 rows per request: paging stops at the limit.
    env = make_env("/children-offset", pagination="offset", page_size=3)
    response = await post(env, "/v1/agreements/school-transfer/extract", {}, "school")
    assert len(ndjson(response)) == 10
    assert [q.get("offset", "0") for _, q in upstream.seen] == ["0", "3", "6", "9"]


async def test_limit_stops_paging_early(make_env: MakeEnv, upstream: Upstream) -> None:
    env = make_env()
    response = await post(env, "/v1/agreements/school-transfer/extract", {"limit": 3}, "school")
    assert len(ndjson(response)) == 3
    assert len(upstream.seen) == 1


# -- failures --------------------------------------------------------------------------------------------------------
async def test_a_slow_registry_times_out_with_504(make_env: MakeEnv, upstream: Upstream) -> None:
    env = make_env("/slow/children", timeout_s=0.4)
    started = time.monotonic()
    response = await post(env, "/v1/agreements/school-transfer/extract", {}, "school")
    elapsed = time.monotonic() - started
    problem(response, 504, "registry-timeout")
    assert 0.4 <= elapsed < upstream.slow_s  # the configured timeout, not the upstream's pace
    assert upstream.hits["/slow/children"] == 1  # a read timeout is not retried
    assert [(e["status"], e["error"]) for e in entries(env)] == [("failed", "registry-timeout")]


@pytest.mark.parametrize(("status", "attempts"), [(503, 3), (502, 3), (504, 3), (500, 1), (404, 1), (401, 1)])
async def test_failing_registry_retries_only_transient_statuses(
    make_env: MakeEnv, upstream: Upstream, status: int, attempts: int
) -> None:
    env = make_env("/failing/children", retries=2)
    upstream.failing_status = status
    response = await post(env, "/v1/agreements/school-transfer/extract", {}, "school")
    body = problem(response, 502, "registry-unavailable")
    assert str(status) in body["detail"]
    assert upstream.hits["/failing/children"] == attempts
    assert [(e["status"], e["rows"]) for e in entries(env)] == [("failed", 0)]


async def test_a_flaky_registry_succeeds_after_retries(make_env: MakeEnv, upstream: Upstream) -> None:
    env = make_env("/flaky/children", retries=3)
    upstream.flaky_failures = 3
    response = await post(env, "/v1/agreements/school-transfer/extract", {"limit": 5}, "school")
    assert response.status_code == 200 and len(ndjson(response)) == 5
    assert upstream.hits["/flaky/children"] == 4


async def test_wrong_credentials_are_a_502_without_upstream_detail(make_env: MakeEnv, upstream: Upstream) -> None:
    env = make_env()
    connector: HttpConnector = env.extra["connector"]
    connector._client.headers["X-Registry-Key"] = "wrong"
    response = await post(env, "/v1/agreements/school-transfer/extract", {}, "school")
    assert "401" in problem(response, 502, "registry-unavailable")["detail"]


async def test_a_failure_mid_stream_is_a_clean_502_with_nothing_sent(make_env: MakeEnv, upstream: Upstream) -> None:
    env = make_env("/midstream/children", retries=0, page_size=4)
    transport = httpx.ASGITransport(app=env.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        response = await client.post("/v1/agreements/school-transfer/extract", headers=env.auth("school"), json={})
    # The whole scope is read into its release order before the response starts: a registry failing on the second
    # page is a clean 502 with nothing sent (the first page used to leave before the second failed).
    problem(response, 502, "registry-unavailable")
    (entry,) = entries(env)
    assert (entry["status"], entry["error"], entry["rows"], entry["bytes"]) == ("failed", "registry-unavailable", 0, 0)


async def test_the_circuit_breaker_opens_and_closes(make_env: MakeEnv, upstream: Upstream) -> None:
    now = [0.0]
    env = make_env("/failing/children", retries=0, breaker_failures=2, breaker_open_s=30, clock=lambda: now[0])
    connector: HttpConnector = env.extra["connector"]
    url = "/v1/agreements/school-transfer/extract"
    for _ in range(2):
        problem(await post(env, url, {}, "school"), 502, "registry-unavailable")
    assert upstream.hits["/failing/children"] == 2 and connector.breaker.state == "open"
    opened = await post(env, url, {}, "school")
    assert "circuit open" in problem(opened, 502, "registry-unavailable")["detail"]
    assert upstream.hits["/failing/children"] == 2  # failed at once, without asking the registry
    assert opened.headers["retry-after"] == "30"
    now[0] = 31.0  # half-open: one trial; it fails, so the circuit opens again
    problem(await post(env, url, {}, "school"), 502, "registry-unavailable")
    assert upstream.hits["/failing/children"] == 3 and connector.breaker.state == "open"
    now[0] = 62.0
    upstream.failing_status = None  # the registry recovered: the trial succeeds and closes the circuit
    response = await post(env, url, {"limit": 5}, "school")
    assert response.status_code == 200 and len(ndjson(response)) == 5
    assert connector.breaker.state == "closed"
    statuses = [e["status"] for e in entries(env)]
    assert statuses == ["failed", "failed", "failed", "failed", "completed"]


def test_breaker_allows_one_trial_at_a_time() -> None:
    now = [0.0]
    breaker = CircuitBreaker(1, 10, clock=lambda: now[0])
    assert breaker.acquire() is False
    breaker.record(False, trial=False)
    with pytest.raises(RegistryUnavailableError):
        breaker.acquire()
    now[0] = 10.0
    assert breaker.state == "half-open"
    assert breaker.acquire() is True
    with pytest.raises(RegistryUnavailableError):  # a second caller while the trial runs
        breaker.acquire()
    breaker.record(True, trial=True)
    assert breaker.state == "closed" and breaker.acquire() is False


def test_connect_errors_are_retried_then_unavailable(
    catalog: Catalog, agreements: dict[str, Agreement], tmp_path: Path
) -> None:
    # Nothing listens on this port (bound, never accepting): connection refused on every attempt.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    config = parse_http_registry(http_settings(retries=3, backoff_s=0.1), "gateway.yaml", tmp_path)
    connector = HttpConnector(f"http://127.0.0.1:{port}", config, env={"TEST_REGISTRY_KEY": TOKEN}, sleep=sleeps.append)
    plan = plan_extract(agreements["school-transfer"], ExtractRequest(None, None, "ndjson", None), today=TODAY)
    with pytest.raises(RegistryUnavailableError, match="not reachable"):
        next(connector.stream(plan, batch_rows=10))
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2] <= 0.4  # exponential backoff (with jitter), bounded
    connector.close()


def test_read_timeout_maps_to_registry_timeout(
    agreements: dict[str, Agreement], upstream: Upstream, tmp_path: Path
) -> None:
    config = parse_http_registry(http_settings("/slow/children", timeout_s=0.2), "gateway.yaml", tmp_path)
    connector = HttpConnector(upstream.base_url, config, env={"TEST_REGISTRY_KEY": TOKEN})
    plan = plan_extract(agreements["school-transfer"], ExtractRequest(None, None, "ndjson", None), today=TODAY)
    with pytest.raises(RegistryTimeoutError):
        next(connector.stream(plan, batch_rows=10))
    connector.close()


# -- JSON paths ------------------------------------------------------------------------------------------------------
async def test_an_api_that_ignores_the_offset_is_not_paged_forever(make_env: MakeEnv, upstream: Upstream) -> None:
    # /children is a cursor API: asked for offset pages it returns its first page every time.
    env = make_env("/children", pagination="offset", page_size=20)
    started = time.monotonic()
    response = await post(env, "/v1/agreements/research-continuity/extract", {}, "research")
    assert "same page again" in problem(response, 502, "registry-unavailable")["detail"]
    assert time.monotonic() - started < 5 and upstream.hits["/children"] == 2


def test_json_paths_read_nested_objects_and_lists() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2, "d": [[5, 6]]}]}, "x": None, "n": 0}
    assert JsonPath.parse("a.b[1].c").get(doc) == 2
    assert JsonPath.parse("a.b[1].d[0][1]").get(doc) == 6
    assert JsonPath.parse("n").get(doc) == 0
    for missing in ("a.b[5].c", "a.z", "x.y", "a.b.c", "n[0]", "a[0]"):
        assert JsonPath.parse(missing).get(doc) is None, missing
    assert JsonPath.parse("guardians[0].phone").steps == ("guardians", 0, "phone")
    for bad in ("", "a..b", "a[x]", "a[-1]", "[0]", "a.b[", "a b", "a.1b"):
        with pytest.raises(ValueError, match="invalid JSON path"):
            JsonPath.parse(bad)


async def test_a_nested_value_mapped_to_a_column_is_refused(make_env: MakeEnv) -> None:
    env = make_env(datasets={"children": {"path": "/children", "paths": {**PATHS, "guardian_name": "guardian"}}})
    response = await post(env, "/v1/agreements/school-transfer/extract", {}, "school")
    body = problem(response, 502, "registry-unavailable")
    assert "'guardian'" in body["detail"]
    assert [e["status"] for e in entries(env)] == ["failed"]


# -- configuration ---------------------------------------------------------------------------------------------------
def write_config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text("registry_url: https://registry.example/api\ndatabase_url: sqlite:///gw.db\n" + extra)
    return path


HTTP_SECTION = """\
http_registry:
  auth_header: Authorization
  auth_scheme: Bearer
  auth_file: registry.token
  page_size: 200
  datasets:
    children: /v2/children
"""


def test_settings_load_the_http_registry_section(tmp_path: Path) -> None:
    path = write_config(tmp_path, HTTP_SECTION)
    settings = load_settings(path, env={})
    config = settings.http_registry
    assert config is not None and config.page_size == 200 and config.datasets["children"].path == "/v2/children"
    assert config.auth_file == tmp_path.resolve() / "registry.token"
    with pytest.raises(ConfigError, match="auth_file"):
        build_connector(settings)  # the secret file does not exist: fails at start
    (tmp_path / "registry.token").write_text("s3cret\n")
    connector = build_connector(settings)
    assert isinstance(connector, HttpConnector)
    assert connector._client.headers["Authorization"] == "Bearer s3cret"
    connector.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (HTTP_SECTION + "  auth_value: s3cret\n", "http_registry.auth_value: unknown setting"),
        (HTTP_SECTION.replace("page_size: 200", "page_size: 0"), "http_registry.page_size"),
        (HTTP_SECTION.replace("children: /v2/children", "children: {path: /c, filter: [a]}"), "children.filter"),
        (HTTP_SECTION.replace("/v2/children", "https://elsewhere/c"), "datasets.children.path"),
        (HTTP_SECTION.replace("  auth_file: registry.token\n", ""), "http_registry.auth_header"),
        (HTTP_SECTION + "  auth_env: TOKEN\n", "not both"),
        (HTTP_SECTION + "  pagination: pages\n", "http_registry.pagination"),
        (HTTP_SECTION.replace("/v2/children", "{path: /c, pagination: pages}"), "children.pagination"),
        (HTTP_SECTION + "  retries: 4\n", "http_registry.retries"),
        ("", "http_registry: an HTTP registry_url needs"),
        ("http_registry: [1]\n", "http_registry: expected a mapping"),
    ],
)
def test_wrong_http_registry_settings_name_file_and_key(tmp_path: Path, section: str, message: str) -> None:
    path = write_config(tmp_path, section)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_missing_auth_env_fails_at_start(tmp_path: Path) -> None:
    config = parse_http_registry(http_settings(), "gateway.yaml", tmp_path)
    with pytest.raises(ConfigError, match="TEST_REGISTRY_KEY is not set"):
        HttpConnector("http://127.0.0.1:9", config, env={})


def test_sql_urls_still_build_the_sql_connector(tmp_path: Path, registry_path: Path) -> None:
    from gateway.connectors import SqlConnector

    path = tmp_path / "gateway.yaml"
    path.write_text(f"registry_url: sqlite:///{registry_path}\ndatabase_url: sqlite:///gw.db\n")
    connector = build_connector(load_settings(path, env={}))
    assert isinstance(connector, SqlConnector)
    connector.close()


def test_ping_uses_the_health_path_or_the_breaker(upstream: Upstream, tmp_path: Path) -> None:
    config = parse_http_registry(http_settings(health_path="/healthz"), "gateway.yaml", tmp_path)
    connector = HttpConnector(upstream.base_url, config, env={"TEST_REGISTRY_KEY": TOKEN})
    connector.ping()
    connector._client.headers["X-Registry-Key"] = "wrong"
    with pytest.raises(RegistryUnavailableError):
        connector.ping()
    connector.close()
