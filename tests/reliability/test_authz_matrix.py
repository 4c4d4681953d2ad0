"""Authorization matrix: every endpoint x every kind of caller, with the EXACT status (and problem slug).

Callers (columns of the table):

* ``party``: a requester that is a party to the agreement the endpoint is about (or, for the log and disclosure
  endpoints, the requester that owns the disclosure under test);
* ``outsider``: a requester party to nothing;
* ``compliance``, ``admin``, ``approver``: one principal holding only that role;
* ``none``: no Authorization header at all.

Two gateways are used. The data plane runs on the harness's dict of agreements (which also holds an expired and a
not-yet-valid agreement). The agreement lifecycle (admin endpoints, versions, re-identification, a *revoked*
agreement) needs the database-backed registry, so those rows run on a gateway switched to it with
``tests.gateway.lifecycle_support.use_store``; each of those cells gets a fresh gateway because some of them change
state (apply, approve, suspend).

Expected values were derived by reading the route code (``gateway/web/routes/*.py``, ``gateway/web/ui/access.py``) and
docs/design.md section 6; a cell whose actual behaviour is wrong is marked ``xfail(strict=True)`` with the reason.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.audit.log import SqlDisclosureLog
from gateway.auth import PrincipalStore
from gateway.throttle import AuthThrottle
from gateway.web.routes.common import new_id
from policies import Catalog
from tests.gateway.harness import Env, build_env, sqlite_url
from tests.gateway.lifecycle_support import RESEARCH, TEXTS, activate, apply, set_state, use_store

pytestmark = pytest.mark.anyio

CALLERS = ("party", "outsider", "compliance", "admin", "approver", "none")
Cell = int | str  # 200, or "403:not-a-party" (status and problem type slug)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the endpoints --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # may hold {cid} (a subject id in scope) and {disc} (a disclosure id owned by `research`)
    party: str  # harness alias used for the "party" column
    json: Any = None
    content: bytes | None = None
    content_type: str | None = None


_FORM = "application/x-www-form-urlencoded"
STATS_AGG = {"group_by": ["gender"], "measures": ["count"]}
VERIFY = {"subject_id": "{cid}", "claims": {"status": "enrolled"}}
REID = {"field": "child_id", "tokens": ["abc"], "reason": "follow-up"}

DATA_ENDPOINTS: dict[str, Endpoint] = {
    "agreements": Endpoint("GET", "/v1/agreements", "research"),
    "extract": Endpoint("POST", "/v1/agreements/research-continuity/extract", "research", {"limit": 1}),
    "extract-expired": Endpoint("POST", "/v1/agreements/research-expired/extract", "research", {"limit": 1}),
    "extract-future": Endpoint("POST", "/v1/agreements/research-future/extract", "research", {"limit": 1}),
    "extract-missing": Endpoint("POST", "/v1/agreements/no-such-agreement/extract", "research", {"limit": 1}),
    "extract-wrong-op": Endpoint("POST", "/v1/agreements/public-statistics/extract", "stats", {"limit": 1}),
    "aggregate": Endpoint("POST", "/v1/agreements/public-statistics/aggregate", "stats", STATS_AGG),
    "aggregate-wrong-op": Endpoint("POST", "/v1/agreements/research-continuity/aggregate", "research", STATS_AGG),
    "aggregate-expired": Endpoint("POST", "/v1/agreements/research-expired/aggregate", "research", STATS_AGG),
    "records": Endpoint("GET", "/v1/agreements/school-transfer/records/{cid}", "school"),
    "records-wrong-op": Endpoint("GET", "/v1/agreements/research-continuity/records/{cid}", "research"),
    "records-expired": Endpoint("GET", "/v1/agreements/research-expired/records/{cid}", "research"),
    "verify": Endpoint("POST", "/v1/agreements/finance-subsidy/verify", "finance", VERIFY),
    "verify-expired": Endpoint("POST", "/v1/agreements/research-expired/verify", "research", VERIFY),
    "risk": Endpoint("GET", "/v1/agreements/research-continuity/risk", "research"),
    "risk-missing": Endpoint("GET", "/v1/agreements/no-such-agreement/risk", "research"),
    "disclosures": Endpoint("GET", "/v1/disclosures", "research"),
    "disclosure": Endpoint("GET", "/v1/disclosures/{disc}", "research"),
    "disclosure-missing": Endpoint("GET", "/v1/disclosures/{missing}", "research"),
    "receipt": Endpoint("GET", "/v1/disclosures/{disc}/receipt", "research"),
    "receipt-missing": Endpoint("GET", "/v1/disclosures/{missing}/receipt", "research"),
    "export": Endpoint("GET", "/v1/disclosures/export", "research"),
    "totals": Endpoint("GET", "/v1/disclosures/totals", "research"),
    "subjects": Endpoint("POST", "/v1/subjects/disclosures", "research", {"subject_id": "{cid}"}),
    "subjects-proof": Endpoint("POST", "/v1/subjects/disclosures/proof", "research", {"subject_id": "{cid}"}),
    "checkpoint": Endpoint("GET", "/v1/log/checkpoint", "research"),
    "consistency": Endpoint("GET", "/v1/log/proof/consistency?first=1&second=1", "research"),
    "public-key": Endpoint("GET", "/v1/log/public-key", "research"),
    "vkey": Endpoint("GET", "/v1/log/vkey", "research"),
    "witnesses": Endpoint("GET", "/v1/log/witnesses", "research"),
    "ui": Endpoint("GET", "/ui/", "research"),
    "agreement": Endpoint("GET", "/v1/agreements/research-continuity", "research"),
    "agreement-expired": Endpoint("GET", "/v1/agreements/research-expired", "research"),
    "agreement-missing": Endpoint("GET", "/v1/agreements/no-such-agreement", "research"),
    # Dashboard pages ask the same table (gateway/web/authz.py) as the API rows above: risk, log, accounting.
    "ui-risk": Endpoint("GET", "/ui/agreements/research-continuity/risk", "research"),
    "ui-log": Endpoint("GET", "/ui/disclosures", "research"),
    "ui-subjects": Endpoint("GET", "/ui/subjects", "research"),
    "ui-ack": Endpoint(
        "POST", "/ui/alerts/acknowledge", "research", content=b"alert_key=nope&note=x", content_type=_FORM
    ),
    # Read-only oversight pages: requests under dual control (actions.read) and the witnessing status.
    "ui-actions": Endpoint("GET", "/ui/actions", "research"),
    "ui-witnesses": Endpoint("GET", "/ui/witnesses", "research"),
}

STORE_ENDPOINTS: dict[str, Endpoint] = {
    # The dashboard's review page of a draft, and its approve form on a version that is no draft any more.
    "ui-review": Endpoint("GET", "/ui/agreements/public-statistics/versions/1", "stats"),
    "ui-approve": Endpoint(
        "POST",
        "/ui/agreements/research-continuity/versions/1/approve",
        "research",
        content=b"confirm=1",
        content_type=_FORM,
    ),
    "versions": Endpoint("GET", "/v1/agreements/research-continuity/versions", "research"),
    "versions-revoked": Endpoint("GET", "/v1/agreements/finance-subsidy/versions", "finance"),
    "versions-missing": Endpoint("GET", "/v1/agreements/no-such-agreement/versions", "research"),
    "version": Endpoint("GET", "/v1/agreements/research-continuity/versions/1", "research"),
    "version-missing": Endpoint("GET", "/v1/agreements/research-continuity/versions/99", "research"),
    "extract-revoked": Endpoint("POST", "/v1/agreements/finance-subsidy/extract", "finance", {"limit": 1}),
    "verify-revoked": Endpoint("POST", "/v1/agreements/finance-subsidy/verify", "finance", VERIFY),
    "extract-suspended": Endpoint("POST", "/v1/agreements/school-transfer/extract", "school", {"limit": 1}),
    "records-suspended": Endpoint("GET", "/v1/agreements/school-transfer/records/{cid}", "school"),
    "admin-list": Endpoint("GET", "/v1/admin/agreements", "research"),
    "admin-apply": Endpoint(
        "POST",
        "/v1/admin/agreements",
        "research",
        content=TEXTS["public-statistics.yaml"].replace("id: public-statistics", "id: stats-copy").encode(),
        content_type="application/yaml",
    ),
    "admin-approve": Endpoint("POST", "/v1/admin/agreements/public-statistics/versions/1/approve", "stats"),
    "admin-accept-risk": Endpoint(
        "POST", "/v1/admin/agreements/research-continuity/versions/1/risk-acceptances", "research", {"reason": "t"}
    ),
    "admin-state": Endpoint(
        "POST", "/v1/admin/agreements/research-continuity/state", "research", {"state": "suspended", "reason": "t"}
    ),
    "admin-reject": Endpoint(
        "POST", "/v1/admin/agreements/research-continuity/versions/1/reject", "research", {"reason": "t"}
    ),
    "admin-preview": Endpoint("GET", "/v1/admin/agreements/research-continuity/versions/1/preview", "research"),
    "reid-request": Endpoint("POST", "/v1/agreements/research-continuity/reidentify", "research", REID),
    "reid-list": Endpoint("GET", "/v1/admin/reidentifications", "research"),
    "reid-get-missing": Endpoint("GET", "/v1/reidentifications/{missing}", "research"),
    "reid-approve-missing": Endpoint("POST", "/v1/admin/reidentifications/{missing}/approve", "research"),
    "agreement-suspended": Endpoint("GET", "/v1/agreements/school-transfer", "school"),
    "agreement-revoked": Endpoint("GET", "/v1/agreements/finance-subsidy", "finance"),
    # Dual control: requests are recorded (202) and run only when a second person confirms them.
    "admin-state-revoke": Endpoint(
        "POST", "/v1/admin/agreements/research-continuity/state", "research", {"state": "revoked", "reason": "t"}
    ),
    "actions-request": Endpoint(
        "POST", "/v1/admin/actions", "research", {"action": "agreement.revoke", "agreement_id": "research-continuity"}
    ),
    "actions-list": Endpoint("GET", "/v1/admin/actions", "research"),
    "actions-confirm-missing": Endpoint("POST", "/v1/admin/actions/" + "0" * 32 + "/confirm", "research"),
}

# -- the table ------------------------------------------------------------------------------------------------------
NP = "403:not-a-party"
RR = "403:role-required"
NF = "404:not-found"
UA = "401:unauthenticated"
NV = "403:agreement-not-valid"
OP = "422:operation-not-allowed"
DASH = "403:dashboard-role-required"  # an HTML page, not a problem: status only

# endpoint               party      outsider  compliance  admin   approver  none
TABLE: list[tuple[str, Cell, Cell, Cell, Cell, Cell, Cell]] = [
    ("agreements",         200,     200,      200,        200,    200,      UA),
    ("extract",            200,     NP,       NP,         NP,     NP,       UA),
    ("extract-expired",    NV,      NP,       NP,         NP,     NP,       UA),
    ("extract-future",     NV,      NP,       NP,         NP,     NP,       UA),
    ("extract-missing",    NF,      NF,       NF,         NF,     NF,       UA),
    ("extract-wrong-op",   OP,      NP,       NP,         NP,     NP,       UA),
    ("aggregate",          200,     NP,       NP,         NP,     NP,       UA),
    ("aggregate-wrong-op", OP,      NP,       NP,         NP,     NP,       UA),
    ("aggregate-expired",  NV,      NP,       NP,         NP,     NP,       UA),
    ("records",            200,     NP,       NP,         NP,     NP,       UA),
    ("records-wrong-op",   OP,      NP,       NP,         NP,     NP,       UA),
    ("records-expired",    NV,      NP,       NP,         NP,     NP,       UA),
    ("verify",             200,     NP,       NP,         NP,     NP,       UA),
    ("verify-expired",     NV,      NP,       NP,         NP,     NP,       UA),
    # Compliance officers oversee what agreements release: the risk report is theirs too (issue 17).
    ("risk",               RR,      RR,       200,        200,    200,      UA),
    ("risk-missing",       RR,      RR,       NF,         NF,     NF,       UA),
    # A requester lists its own disclosures only (checked below); admins and approvers are not log readers.
    ("disclosures",        200,     200,      200,        RR,     RR,       UA),
    # "compliance, or its requester": everyone else gets the same 404 as for an id that does not exist.
    ("disclosure",         200,     NF,       200,        NF,     NF,       UA),
    ("disclosure-missing", NF,      NF,       NF,         NF,     NF,       UA),
    ("receipt",            200,     NF,       200,        NF,     NF,       UA),
    ("receipt-missing",    NF,      NF,       NF,         NF,     NF,       UA),
    ("export",             RR,      RR,       200,        RR,     RR,       UA),
    ("totals",             RR,      RR,       200,        RR,     RR,       UA),
    ("subjects",           RR,      RR,       200,        RR,     RR,       UA),
    ("subjects-proof",     RR,      RR,       200,        RR,     RR,       UA),
    ("checkpoint",         200,     200,      200,        200,    200,      UA),
    ("consistency",        200,     200,      200,        200,    200,      UA),
    ("public-key",         200,     200,      200,        200,    200,      200),  # public by design
    ("vkey",               200,     200,      200,        200,    200,      200),  # public by design
    # Any authenticated caller; the harness gateway has no witnesses configured.
    ("witnesses",          NF,      NF,       NF,         NF,     NF,       UA),
    # Dashboard: compliance, admin and approver (to review versions); without a session, sign in.
    ("ui",                 DASH,    DASH,     200,        200,    200,      303),
    ("ui-risk",            DASH,    DASH,     200,        200,    200,      303),
    # HTML pages: status only. The log and a child's accounting stay compliance's in the dashboard as in the API.
    ("ui-log",             DASH,    DASH,     200,        403,    403,      303),
    ("ui-subjects",        DASH,    DASH,     200,        403,    403,      303),
    # Only compliance acknowledges alerts (an unknown alert: 404).
    ("ui-ack",             DASH,    DASH,     404,        403,    403,      401),
    # actions.read is every dashboard role's; the witness page (no witnesses here) is any dashboard role's too.
    ("ui-actions",         DASH,    DASH,     200,        200,    200,      303),
    ("ui-witnesses",       DASH,    DASH,     200,        200,    200,      303),
    ("ui-review",          DASH,    DASH,     200,        200,    200,      303),
    # Only approvers decide; research-continuity v1 is active, so there is nothing left to approve.
    ("ui-approve",         DASH,    DASH,     403,        403,    409,      401),
    # -- lifecycle (database-backed agreements) --
    # A party sees the non-draft versions that name it as a party; to others they do not exist.
    ("versions",           200,     NF,       200,        200,    200,      UA),
    ("versions-revoked",   200,     NF,       200,        200,    200,      UA),
    ("versions-missing",   NF,      NF,       NF,         NF,     NF,       UA),
    ("version",            200,     NF,       200,        200,    200,      UA),
    ("version-missing",    NF,      NF,       NF,         NF,     NF,       UA),
    # A revoked / suspended agreement is named as such to its parties; to everyone else it does not exist.
    ("extract-revoked",    "403:agreement-revoked", NF, NF, NF, NF,         UA),
    ("verify-revoked",     "403:agreement-revoked", NF, NF, NF, NF,         UA),
    ("extract-suspended",  "403:agreement-suspended", NF, NF, NF, NF,       UA),
    ("records-suspended",  "403:agreement-suspended", NF, NF, NF, NF,       UA),
    ("admin-list",         RR,      RR,       200,        200,    200,      UA),
    ("admin-apply",        RR,      RR,       RR,         201,    RR,       UA),
    # Four eyes: only an approver approves (the harness admin holds only the admin role).
    ("admin-approve",      RR,      RR,       RR,         RR,     200,      UA),
    # Only approvers accept a risk; research-continuity v1 is active, so there is nothing left to accept.
    ("admin-accept-risk",  RR,      RR,       RR,         RR,     "409:not-a-draft", UA),
    # Only approvers reject, and only a draft (research-continuity v1 is active).
    ("admin-reject",       RR,      RR,       RR,         RR,     "409:not-a-draft", UA),
    ("admin-state",        RR,      RR,       RR,         200,    RR,       UA),
    ("admin-preview",      RR,      RR,       RR,         200,    200,      UA),
    ("reid-request",       "403:reidentification-not-allowed", NP, NP, NP, NP, UA),
    ("reid-list",          RR,      RR,       200,        200,    200,      UA),
    ("reid-get-missing",   NF,      NF,       NF,         NF,     NF,       UA),
    ("reid-approve-missing", RR,    RR,       RR,         RR,     NF,       UA),
    # One agreement: whoever the listing shows it to (a party, an overseer); to anyone else it does not exist.
    ("agreement",          200,     NF,       200,        200,    200,      UA),
    ("agreement-expired",  200,     NF,       200,        200,    200,      UA),
    ("agreement-missing",  NF,      NF,       NF,         NF,     NF,       UA),
    ("agreement-suspended", "403:agreement-suspended", NF, NF, NF, NF,      UA),
    ("agreement-revoked",  "403:agreement-revoked", NF, NF, NF, NF,         UA),
    ("admin-state-revoke", RR,      RR,       RR,         202,    RR,       UA),
    ("actions-request",    RR,      RR,       RR,         202,    RR,       UA),
    ("actions-list",       RR,      RR,       200,        200,    200,      UA),
    ("actions-confirm-missing", RR, RR,       RR,         NF,     NF,       UA),
]  # fmt: skip

#: cells whose actual behaviour is wrong: (endpoint, caller) -> reason. Empty when the gateway behaves.
KNOWN_WRONG: dict[tuple[str, str], str] = {}


def _cells() -> Iterator[Any]:
    for endpoint, *expected in TABLE:
        assert endpoint in DATA_ENDPOINTS or endpoint in STORE_ENDPOINTS, endpoint
        for caller, cell in zip(CALLERS, expected, strict=True):
            marks = []
            reason = KNOWN_WRONG.get((endpoint, caller))
            if reason is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            yield pytest.param(endpoint, caller, cell, id=f"{endpoint}-{caller}", marks=marks)


def test_table_covers_every_endpoint() -> None:
    assert {row[0] for row in TABLE} == set(DATA_ENDPOINTS) | set(STORE_ENDPOINTS)
    assert len(TABLE) * len(CALLERS) == len(list(_cells()))


# -- environments ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def subject_id(registry_path: Path) -> str:
    """A child within the row scopes of school-transfer (enrolled) and finance-subsidy (enrolled, low income)."""
    conn = sqlite3.connect(registry_path)
    try:
        row = conn.execute(
            "SELECT child_id FROM child_registry WHERE status = 'enrolled' AND low_income = 1 ORDER BY child_id LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return str(row[0])


def _add_approver(env: Env, name: str = "approver-x") -> None:
    store = env.services.authenticator
    assert isinstance(store, PrincipalStore)
    env.keys["approver"] = store.create(name, {"approver"})


@pytest.fixture(scope="module")
def data_env(catalog: Catalog, registry_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One gateway for the data-plane rows (they change nothing another row depends on; quotas are far away)."""
    path = tmp_path_factory.mktemp("authz") / "g.db"
    env = build_env(catalog, sqlite_url(path), sqlite_url(registry_path))
    _add_approver(env)
    yield env
    env.services.close()
    env.engine.dispose()


async def _ensure_disclosure(env: Env) -> str:
    """A completed disclosure owned by `research`, covered by a signed checkpoint."""
    if "disc" not in env.extra:
        async with env.client() as client:
            response = await client.post(
                "/v1/agreements/research-continuity/extract", headers=env.auth("research"), json={"limit": 1}
            )
        assert response.status_code == 200, response.text
        env.extra["disc"] = response.headers["x-disclosure-id"]
        log = env.services.log
        assert isinstance(log, SqlDisclosureLog)
        log.checkpoint()
    disc: str = env.extra["disc"]
    return disc


async def _store_env(env: Env) -> Env:
    """Lifecycle gateway: research-continuity active, school-transfer suspended, finance-subsidy revoked,
    public-statistics v1 a draft authored by the admin."""
    use_store(env)  # adds approver (approver-li), approver2, admin2
    async with env.client() as client:
        await activate(client, env, RESEARCH)  # the demo text coarsened for 600 children (tests/conftest.py)
        for name in ("school-transfer.yaml", "finance-subsidy.yaml"):
            await activate(client, env, TEXTS[name])
        for agreement_id, state in (("school-transfer", "suspended"), ("finance-subsidy", "revoked")):
            changed = await set_state(client, env, agreement_id, state, reason="authz matrix")
            assert changed.status_code == 200, changed.text
        draft = await apply(client, env, TEXTS["public-statistics.yaml"])
        assert draft.status_code == 201, draft.text
    return env


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def call(env: Env, endpoint: Endpoint, caller: str, ids: dict[str, str]) -> httpx.Response:
    headers: dict[str, str] = {}
    if caller != "none":
        headers.update(env.auth(endpoint.party if caller == "party" else caller))
    if endpoint.content_type is not None:
        headers["Content-Type"] = endpoint.content_type
    async with env.client() as client:
        return await client.request(
            endpoint.method,
            endpoint.path.format(**ids),
            headers=headers,
            json=_fill(endpoint.json, ids) if endpoint.json is not None else None,
            content=endpoint.content,
        )


def check(response: httpx.Response, expected: Cell) -> None:
    status, _, slug = str(expected).partition(":")
    assert response.status_code == int(status), response.text[:500]
    assert response.status_code != 500
    if response.status_code >= 400 and slug and slug != "dashboard-role-required":
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"].endswith("/" + slug), body
        assert body["status"] == response.status_code
    if slug == "dashboard-role-required":
        assert response.headers["content-type"].startswith("text/html")
    if response.status_code == 303:
        assert response.headers["location"].startswith("/ui/sign-in")
    if response.status_code == 401 and not response.headers["content-type"].startswith("text/html"):
        assert response.headers["www-authenticate"].startswith("Bearer")  # (a dashboard form says: sign in)
    if response.status_code >= 400:
        # A refused request never releases anything.
        assert "x-disclosure-id" not in response.headers


@pytest.mark.parametrize(("endpoint", "caller", "expected"), list(_cells()))
async def test_authz_cell(
    endpoint: str,
    caller: str,
    expected: Cell,
    data_env: Env,
    subject_id: str,
    catalog: Catalog,
    registry_path: Path,
    tmp_path: Path,
) -> None:
    ids = {"cid": subject_id, "missing": new_id()}
    if endpoint in DATA_ENDPOINTS:
        env = data_env
        ids["disc"] = await _ensure_disclosure(env)
        spec = DATA_ENDPOINTS[endpoint]
    else:
        env = await _store_env(build_env(catalog, sqlite_url(tmp_path / "g.db"), sqlite_url(registry_path)))
        spec = STORE_ENDPOINTS[endpoint]
    try:
        response = await call(env, spec, caller, ids)
        check(response, expected)
    finally:
        if env is not data_env:
            env.services.close()
            env.engine.dispose()


# -- cross-principal isolation, in detail ---------------------------------------------------------------------------
def _comparable(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body.pop("request_id", None)
    return body


@pytest.mark.parametrize("suffix", ["", "/receipt"])
@pytest.mark.parametrize("other", ["outsider", "finance", "admin", "approver"])
async def test_someone_elses_disclosure_is_indistinguishable_from_a_missing_one(
    data_env: Env, suffix: str, other: str
) -> None:
    disc = await _ensure_disclosure(data_env)
    async with data_env.client() as client:
        theirs = await client.get(f"/v1/disclosures/{disc}{suffix}", headers=data_env.auth(other))
        missing = await client.get(f"/v1/disclosures/{new_id()}{suffix}", headers=data_env.auth(other))
        own = await client.get(f"/v1/disclosures/{disc}{suffix}", headers=data_env.auth("research"))
    assert own.status_code == 200
    assert theirs.status_code == missing.status_code == 404
    assert theirs.headers["content-type"] == missing.headers["content-type"] == "application/problem+json"
    assert _comparable(theirs) == _comparable(missing)
    assert disc not in theirs.text


async def test_a_requester_lists_only_its_own_disclosures_whatever_it_asks(data_env: Env) -> None:
    disc = await _ensure_disclosure(data_env)
    async with data_env.client() as client:
        mine = await client.get("/v1/disclosures", headers=data_env.auth("research"))
        others = await client.get(
            "/v1/disclosures", params={"principal": "pku-education-lab"}, headers=data_env.auth("outsider")
        )
        exported = await client.get("/v1/disclosures/export", headers=data_env.auth("outsider"))
    assert disc in {d["id"] for d in mine.json()["disclosures"]}
    assert {d["recipient"] for d in mine.json()["disclosures"]} == {"pku-education-lab"}
    assert others.status_code == 200 and others.json()["disclosures"] == []
    assert exported.status_code == 403


@pytest.mark.parametrize(
    "header",
    ["Bearer dxg_aaaaaaaaaaaaaaaa_" + "A" * 43, "Bearer not-a-key", "Basic dXNlcjpwYXNz", "Bearer ", "bearer"],
)
@pytest.mark.parametrize(
    "endpoint", [e for e, *cells in TABLE if e in DATA_ENDPOINTS and cells[-1] == UA and e != "ui"]
)
async def test_a_bad_key_is_401_everywhere(data_env: Env, subject_id: str, endpoint: str, header: str) -> None:
    spec = DATA_ENDPOINTS[endpoint]
    ids = {"cid": subject_id, "missing": new_id(), "disc": await _ensure_disclosure(data_env)}
    # Fresh failure counters per cell: the module's gateway meets over a hundred bad keys from one address, which the
    # failed-authentication throttle would answer with 429 after ten (tested in tests/gateway/test_insider_threats.py).
    data_env.services.auth_throttle = AuthThrottle()
    async with data_env.client() as client:
        response = await client.request(
            spec.method,
            spec.path.format(**ids),
            headers={"Authorization": header},
            json=_fill(spec.json, ids) if spec.json is not None else None,
        )
    check(response, UA)
