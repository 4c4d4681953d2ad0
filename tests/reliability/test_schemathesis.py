"""Schemathesis against /openapi.json: every documented operation, once per role with that role's API key.

The schema is loaded from the real app (in process, over ASGI) on a test deployment whose agreements live in the
database store, as in every deployment: research-continuity (extract; re-identification allowed), school-transfer
(record, extract), finance-subsidy (extract, verify) and public-statistics (aggregate), all active, plus one extract by
research (a disclosure, covered by a signed checkpoint) and one re-identification request of its token. Each role
fuzzes its own fresh gateway, so what one role changes (an admin suspending an agreement, an approver approving a
request) never decides what another role sees, and a failure names the role and the operation:
``test_operation[<role>-<METHOD /path>]``.

Per (role, operation), three kinds of requests:

* schemathesis' coverage phase: its deterministic boundary and schema-violating cases (missing and wrong-typed
  parameters, bodies of the wrong shape or media type, ...);
* ``HOSTILE`` values in every query and path parameter, one at a time (strings that pass ``str.isdigit`` but not
  ``int``, numbers past 64 bits, moments without a UTC representation, NUL, traversal, ...), the other path
  parameters naming the role's real objects;
* ``EXAMPLES`` fuzzed examples (hypothesis; derandomized under CI, see tests/conftest.py), positive and negative,
  half of them with the path parameters of the role's real objects (its agreement, a subject in its scope, the
  disclosure, the re-identification request) so that they reach the code behind the 404s.

Every response is checked with schemathesis' not_a_server_error, status_code_conformance, content_type_conformance,
response_headers_conformance and response_schema_conformance, and with ours: every error is an RFC 9457 problem
(``application/problem+json``, ``status`` equal to the HTTP status, a type under the gateway's problem base) and no
response repeats the caller's credential, and no response is a 5xx (the test deployment's database and registry are
up, so a 502/503/504 would blame them for the caller's input).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import re
import sqlite3
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.audit.log import SqlDisclosureLog
from gateway.throttle import AuthThrottle
from gateway.web.openapi.document import openapi_document
from gateway.web.problems import PROBLEM_TYPE_BASE
from policies import Catalog
from tests.gateway.harness import TODAY, Env, build_env, sqlite_url
from tests.gateway.lifecycle_support import REIDENTIFIABLE, TEXTS, activate, use_store

#: fuzzed examples per (role, operation), on top of the coverage-phase and hostile cases
EXAMPLES = 10

CHECKS = [
    getattr(schemathesis.checks, name)
    for name in (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
]

#: harness alias of a requester -> the agreement it is a party to (None: party to nothing)
REQUESTERS = {
    "research": "research-continuity",  # extract; re-identification allowed
    "school": "school-transfer",  # record, extract
    "finance": "finance-subsidy",  # extract, verify
    "stats": "public-statistics",  # aggregate
    "outsider": None,  # a requester party to no agreement
}
OVERSIGHT = ("compliance", "admin", "approver")
#: callers without a valid key: no Authorization header; a well-formed key nobody holds; not a Bearer credential
ANONYMOUS = {"anonymous": None, "unknown-key": "Bearer dxg_aaaaaaaaaaaaaaaa_" + "A" * 43, "basic": "Basic dXNlcjpwYXNz"}
ROLES = (*REQUESTERS, *OVERSIGHT, *ANONYMOUS)
AGREEMENTS = ("research-continuity", "school-transfer", "finance-subsidy", "public-statistics")


def _cursor(before: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": before}).encode()).decode().rstrip("=")


#: values no schema-driven generator is likely to draw, sent in every query and path parameter (one at a time)
HOSTILE = (
    "²",  # str.isdigit() is True, int() refuses it
    "١٢",  # Arabic-Indic digits: int() accepts them
    "9" * 40,  # past every integer column
    "-1",
    "0001-01-01T00:00:00+01:00",  # a timestamp before the first representable UTC moment
    _cursor(2**70),  # a well-formed pagination cursor past BIGINT
    "\x00",
    "../../etc/passwd",
    "' OR '1'='1",
    "ä" * 80,
)


def _operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


DOCUMENTED = _operations()
#: Fuzzed: every documented operation but the document itself. Schemathesis never tests the path it loaded the schema
#: from (it has no parameters; the fixture loading and validating it is its test).
OPERATIONS = [op for op in DOCUMENTED if op != ("GET", "/openapi.json")]


@dataclass
class Deployment:
    env: Env
    schema: Any
    role: str
    header: str | None
    real: dict[str, str]  # path parameter -> the role's real object
    fixed: dict[str, st.SearchStrategy[str]]  # path parameter -> strategy over real objects

    def headers(self) -> dict[str, str]:
        return {"Authorization": self.header} if self.header is not None else {}


def _subject_in_scope(registry_path: Path) -> str:
    """A child within the row scopes of every demo agreement (enrolled, low income)."""
    conn = sqlite3.connect(registry_path)
    try:
        row = conn.execute(
            "SELECT child_id FROM child_registry WHERE status = 'enrolled' AND low_income = 1 ORDER BY child_id LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return str(row[0])


def _tight_quota(text: str) -> str:
    """The agreement with 3 requests per minute: the fuzzing meets its 429s (documented) as well as what lies behind."""
    tightened, count = re.subn(r"requests_per_minute: \d+", "requests_per_minute: 3", text)
    assert count == 1
    return tightened


async def _prepare(env: Env) -> dict[str, str]:
    """Active agreements, one extract by research (a disclosure), one re-identification request of its token and one
    request under dual control."""
    use_store(env)  # adds the approver (approver-li), approver2 and admin2 principals
    async with env.client() as client:
        others = ("school-transfer.yaml", "finance-subsidy.yaml", "public-statistics.yaml")
        for text in (REIDENTIFIABLE, *(TEXTS[name] for name in others)):
            await activate(client, env, _tight_quota(text))
        extract = await client.post(
            "/v1/agreements/research-continuity/extract",
            headers=env.auth("research"),
            json={"limit": 1, "fields": ["child_id"]},
        )
        assert extract.status_code == 200, extract.text
        token = json.loads(extract.text.splitlines()[0])["child_id"]
        asked = await client.post(
            "/v1/agreements/research-continuity/reidentify",
            headers=env.auth("research"),
            json={"field": "child_id", "tokens": [token], "reason": "follow-up of one child in the study"},
        )
        assert asked.status_code == 202, asked.text
        # A request under dual control to confirm (a master-key rotation: confirming it runs nothing in the process).
        action = await client.post(
            "/v1/admin/actions", headers=env.auth("admin"), json={"action": "keys.rotate_master", "reason": "test"}
        )
        assert action.status_code == 202, action.text
    log = env.services.log
    assert isinstance(log, SqlDisclosureLog)
    log.checkpoint()
    return {
        "disclosure_id": extract.headers["x-disclosure-id"],
        "request_id": asked.json()["id"],
        "action_id": action.json()["id"],
    }


def _fixture_owned_lifespan(app: ASGIApp) -> ASGIApp:
    """The app for schemathesis, with the lifespan protocol answered here instead of by the app.

    Schemathesis' pytest plugin ends an ASGI app's lifespan after every test, and the gateway's lifespan shutdown
    closes its services (log writer, connector). One gateway serves a whole role's tests here, so the fixture owns
    its services and closes them at teardown; every HTTP request still goes to the real app, unchanged.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return wrapped


@pytest.fixture(scope="module", params=ROLES)
def deployment(
    request: pytest.FixtureRequest, catalog: Catalog, registry_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    role: str = request.param
    env = build_env(catalog, sqlite_url(tmp_path_factory.mktemp("schemathesis") / "g.db"), sqlite_url(registry_path))
    # The harness clock is frozen: let it advance one second per reading, so that the agreements' per-minute quotas
    # (3, see _tight_quota) refill now and then: the 429s and what lies behind them both get exercised.
    ticks = itertools.count()
    start = dt.datetime.combine(TODAY, dt.time(10, 0), tzinfo=dt.UTC)
    env.services.clock = lambda: start + dt.timedelta(seconds=next(ticks))
    # Thousands of requests with a wrong key from one address would meet only the failed-authentication throttle's
    # 429 after the first few; lift it so these roles keep exercising the 401 path (the throttle is tested in
    # tests/gateway/test_insider_threats.py and test_throttle.py).
    env.services.auth_throttle = AuthThrottle(per_address=10**9, per_key_id=10**9)
    ids = anyio.run(_prepare, env)
    schema = schemathesis.openapi.from_asgi("/openapi.json", _fixture_owned_lifespan(env.app))
    # The credential is the role's, never a generated one: no example of a keyed role goes out without its key
    # (callers without a valid key are roles of their own, ANONYMOUS).
    schema.config.generation.update(with_security_parameters=False)
    if role != "anonymous":
        # Unexpected-method probes (405) are answered by the router before authentication: one role sends them.
        schema.config.phases.coverage.unexpected_methods = set()
    own = REQUESTERS.get(role)
    real = {
        "agreement_id": own or "research-continuity",
        "subject_id": _subject_in_scope(registry_path),
        "disclosure_id": ids["disclosure_id"],
        "request_id": ids["request_id"],
        "action_id": ids["action_id"],
        "version": "1",
    }
    fixed = {name: st.just(value) for name, value in real.items()}
    fixed["agreement_id"] = st.just(own) if own else st.sampled_from(AGREEMENTS)
    fixed["version"] = st.sampled_from(["1", "2"])
    header = ANONYMOUS[role] if role in ANONYMOUS else f"Bearer {env.keys[role]}"
    yield Deployment(env, schema, role, header, real, fixed)
    env.services.close()
    env.engine.dispose()


def test_the_served_document_is_the_one_tested(deployment: Deployment) -> None:
    assert deployment.schema.raw_schema == openapi_document()
    served = {(op.ok().method.upper(), op.ok().path) for op in deployment.schema.get_all_operations()}
    assert served == set(OPERATIONS)
    # ... and it documents every route of the app. Not documented on purpose: /ui, the compliance dashboard (HTML
    # pages behind a session cookie, tested in tests/gateway/test_ui.py and test_ui_browser.py).
    routes = {
        (method, route.path)
        for route in deployment.env.app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert routes == set(DOCUMENTED)
    assert {route.path for route in deployment.env.app.routes if isinstance(route, Mount)} == {"/ui"}


def _own_checks(deployment: Deployment, response: Any) -> None:
    # The deployment's database and registry are up: a 5xx (even a documented 502/503/504) would blame them for the
    # caller's input.
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if deployment.header is not None:
        secret = deployment.header.partition(" ")[2]
        assert secret not in response.text, "the response repeats the caller's credential"
    if response.status_code >= 400:
        assert response.headers.get("content-type") == ["application/problem+json"], response.headers
        problem = response.json()
        assert problem["status"] == response.status_code, problem
        assert problem["type"].startswith(PROBLEM_TYPE_BASE), problem
    if response.status_code == 401:
        assert response.headers["www-authenticate"][0].startswith("Bearer"), response.headers


def _check(deployment: Deployment, case: Any) -> None:
    headers = deployment.headers()
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)
    _own_checks(deployment, response)


def _coverage_cases(deployment: Deployment, operation: Any) -> list[Any]:
    schema = deployment.schema
    return list(
        schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            generation_config=schema.config.generation_for(operation=operation),
        )
    )


def _hostile_cases(deployment: Deployment, operation: Any) -> list[Any]:
    real = {p.name: deployment.real[p.name] for p in operation.path_parameters}
    cases = []
    for parameter in operation.query:
        cases += [operation.Case(path_parameters=real, query={parameter.name: value}) for value in HOSTILE]
    for parameter in operation.path_parameters:
        cases += [operation.Case(path_parameters={**real, parameter.name: value}) for value in HOSTILE]
    return cases


def _fuzz_strategy(deployment: Deployment, operation: Any) -> st.SearchStrategy[Any]:
    names = [p.name for p in operation.path_parameters]
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        if names:
            real = st.fixed_dictionaries({n: deployment.fixed[n] for n in names})
            strategies.append(
                real.flatmap(lambda values, m=mode: operation.as_strategy(generation_mode=m, path_parameters=values))
            )
    return st.one_of(strategies)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation(deployment: Deployment, method: str, path: str) -> None:
    operation = deployment.schema[path][method]
    # Deterministic cases first; all their failures are reported together.
    explicit = _coverage_cases(deployment, operation)
    if deployment.role not in ("unknown-key", "basic"):  # they meet the same 401 as "anonymous", which sends them
        explicit += _hostile_cases(deployment, operation)
    failures = []
    for case in explicit:
        try:
            _check(deployment, case)
        except Exception as exc:  # a failed check, or the app's own exception (the ASGI transport re-raises it)
            failures.append("".join(traceback.format_exception_only(exc)))
        except BaseExceptionGroup as group:  # schemathesis' FailureGroup
            failures.append(str(group))
    assert not failures, f"{len(failures)} of {len(explicit)} explicit cases failed:\n\n" + "\n\n".join(failures)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=_fuzz_strategy(deployment, operation))
    def fuzz(case: Any) -> None:
        _check(deployment, case)

    fuzz()
