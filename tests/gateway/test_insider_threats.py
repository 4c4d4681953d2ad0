"""Attacks from the "no single insider" review, run through the real app; each asserts the attack now fails."""

from __future__ import annotations

import base64
import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from gateway.applog import configure_logging
from gateway.audit.log import DisclosureStart, SqlDisclosureLog
from gateway.audit.reader import LogReader
from gateway.audit.receipts import verify_receipt
from gateway.audit.signer import LogVerifier
from gateway.cli.main import main
from tests.gateway.harness import Env
from tests.gateway.lifecycle_support import RESEARCH as RESEARCH_TEXT
from tests.gateway.lifecycle_support import activate, use_store
from tests.gateway.test_extract_http import assert_problem
from tests.gateway.test_ui import csrf as _csrf

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


# -- 2. receipts must hold both entries of one completed disclosure ----------------------------------------------
async def _receipt(env: Env, disclosure_id: str, who: str = "research") -> dict[str, Any]:
    async with env.client() as client:
        response = await client.get(f"/v1/disclosures/{disclosure_id}/receipt", headers=env.auth(who))
    assert response.status_code == 200, response.text
    receipt: dict[str, Any] = response.json()
    return receipt


def _pem(env: Env) -> str:
    log = env.services.log
    assert isinstance(log, SqlDisclosureLog) and log.signer is not None
    pem: str = log.signer.public_key.to_pem()  # type: ignore[attr-defined]
    return pem


def _verifier(env: Env) -> LogVerifier:
    return LogVerifier.from_pem(_pem(env))


def _cli(tmp_path: Path, receipt: dict[str, Any], env: Env, *extra: str) -> int:
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    (tmp_path / "log.pub").write_text(_pem(env))
    args = ["receipt", "verify", str(tmp_path / "receipt.json"), "--public-key", str(tmp_path / "log.pub")]
    return main([*args, *extra])


def _reproved(env: Env, seq: int, size: int) -> dict[str, Any]:
    """A genuine log entry with a genuine inclusion proof to the given checkpoint (what an attacker with the log
    readable, e.g. another receipt or a log export, could splice in)."""
    reader = LogReader(env.engine)
    found = reader.entry(seq)
    assert found is not None
    proof = [base64.b64encode(h).decode() for h in reader.inclusion_proof(seq, size)]
    return {"index": seq, "entry": found[0], "inclusion_proof": proof}


async def test_a_receipt_without_its_finished_entry_fails(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with env.client() as client:
        response = await client.post(RESEARCH, headers=env.auth("research"), json={"limit": 3})
    disclosure_id = response.headers["x-disclosure-id"]
    receipt = await _receipt(env, disclosure_id)
    verifier = _verifier(env)
    assert verify_receipt(receipt, verifier, content=response.content, disclosure_id=disclosure_id).ok
    assert _cli(tmp_path, receipt, env, "--disclosure-id", disclosure_id) == 0
    assert f"disclosure {disclosure_id} completed" in capsys.readouterr().out

    cut = copy.deepcopy(receipt)
    cut["entries"] = [e for e in cut["entries"] if json.loads(e["entry"])["type"] != "disclosure.finished"]
    report = verify_receipt(cut, verifier)
    assert not report.ok
    assert any("no verified disclosure.finished entry" in p for p in report.problems), report.problems
    assert not verify_receipt(cut, verifier, content=response.content).ok
    assert _cli(tmp_path, cut, env) == 1
    assert "receipt INVALID" in capsys.readouterr().out

    only_finished = copy.deepcopy(receipt)
    only_finished["entries"] = only_finished["entries"][1:]
    assert any("disclosure.started" in p for p in verify_receipt(only_finished, verifier).problems)

    doubled = copy.deepcopy(receipt)
    doubled["entries"] = [receipt["entries"][0], receipt["entries"][0], receipt["entries"][1]]
    assert not verify_receipt(doubled, verifier).ok


async def test_a_receipt_with_entries_of_another_disclosure_fails(env: Env, tmp_path: Path) -> None:
    async with env.client() as client:
        first = await client.post(RESEARCH, headers=env.auth("research"), json={"limit": 2})
        second = await client.post(RESEARCH, headers=env.auth("research"), json={"limit": 4})
    a, b = first.headers["x-disclosure-id"], second.headers["x-disclosure-id"]
    receipt_b = await _receipt(env, b)
    size = receipt_b["tree_size"]
    row_a = env.disclosure(a)
    verifier = _verifier(env)

    # B's receipt with A's finished entry (properly proven against B's checkpoint) in place of B's.
    spliced = copy.deepcopy(receipt_b)
    spliced["entries"][1] = _reproved(env, row_a["finish_seq"], size)
    report = verify_receipt(spliced, verifier)
    assert not report.ok and any("another disclosure" in p for p in report.problems), report.problems
    # ... and relabelled as A's: now B's started entry is the stranger.
    spliced["disclosure_id"] = a
    assert not verify_receipt(spliced, verifier).ok
    # A whole, valid receipt of B shown as the receipt of A's response.
    assert not verify_receipt(receipt_b, verifier, disclosure_id=a).ok
    assert _cli(tmp_path, receipt_b, env, "--disclosure-id", a) == 1
    # B's receipt with A's bytes.
    assert not verify_receipt(receipt_b, verifier, content=first.content).ok


@pytest.mark.parametrize("status", ["failed", "aborted"])
async def test_the_receipt_of_a_disclosure_that_did_not_complete_fails(env: Env, tmp_path: Path, status: str) -> None:
    log = env.services.log
    agreement = env.services.agreements["research-continuity"]
    disclosure_id = f"{status}0123456789abcdef"
    start = DisclosureStart(
        disclosure_id,
        "0" * 32,
        "pku-education-lab",
        agreement.id,
        agreement.version,
        agreement.digest,
        "approver",
        "basis",
        "research",
        "extract",
        {"fields": [], "filters": []},
    )
    log.start(start)
    log.finish(disclosure_id, status=status, rows=1, nbytes=10, sha256="0" * 64, error="registry-unavailable")
    receipt = await _receipt(env, disclosure_id)
    report = verify_receipt(receipt, _verifier(env))
    assert not report.ok
    assert any(f"ended '{status}'" in p for p in report.problems), report.problems
    assert _cli(tmp_path, receipt, env) == 1


# -- 4. a party removed from a version does not read that version ------------------------------------------------
async def test_a_party_removed_from_version_2_does_not_read_it(env: Env) -> None:
    use_store(env)
    v2 = (
        RESEARCH_TEXT.replace("version: 1", "version: 2")
        .replace("parties: [pku-education-lab]", "parties: [receiving-school]")
        .replace("  gender:          keep\n", "")
        .replace("quasi_identifiers: [birth_date, gender]", "quasi_identifiers: [birth_date]")
    )
    base = "/v1/agreements/research-continuity/versions"
    async with env.client() as client:
        await activate(client, env, RESEARCH_TEXT)
        await activate(client, env, v2)
        removed_list = await client.get(base, headers=env.auth("research"))
        removed_v1 = await client.get(f"{base}/1", headers=env.auth("research"))
        removed_v2 = await client.get(f"{base}/2", headers=env.auth("research"))
        missing = await client.get(f"{base}/3", headers=env.auth("research"))
        added_list = await client.get(base, headers=env.auth("school"))
        added_v1 = await client.get(f"{base}/1", headers=env.auth("school"))
        oversight = await client.get(base, headers=env.auth("compliance"))
        oversight_v2 = await client.get(f"{base}/2", headers=env.auth("admin"))
        stranger = await client.get(f"{base}/1", headers=env.auth("outsider"))
    # The removed party keeps its own version and does not see v2 in the listing, its text or a diff to it.
    assert removed_list.status_code == 200
    assert [v["version"] for v in removed_list.json()["versions"]] == [1]
    assert "receiving-school" not in removed_list.text
    assert removed_v1.status_code == 200 and removed_v1.json()["text"] == RESEARCH_TEXT
    # 404, not 403: exactly what a version that does not exist gets, so its existence is not confirmed.
    p2, p3 = assert_problem(removed_v2, 404, "not-found"), assert_problem(missing, 404, "not-found")
    assert p2["title"] == p3["title"]
    assert "receiving-school" not in removed_v2.text
    # The new party sees v2 only: no v1 text, and no diff (it would show v1's lines).
    assert [v["version"] for v in added_list.json()["versions"]] == [2]
    assert "diff" not in added_list.json()["versions"][0]
    assert "pku-education-lab" not in added_list.text
    assert_problem(added_v1, 404, "not-found")
    # Oversight roles read every version, as before.
    assert [v["version"] for v in oversight.json()["versions"]] == [1, 2]
    assert oversight_v2.status_code == 200 and oversight_v2.json()["text"] == v2
    assert_problem(stranger, 404, "not-found")


# -- 3. failed authentication is throttled -------------------------------------------------------------------------
def _client_from(env: Env, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=env.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")


def _count_checks(env: Env, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every key check the authenticator does (the database read and HMAC the throttle must spare)."""
    checks: list[str] = []
    authenticator = env.services.authenticator
    real = authenticator.authenticate

    def counted(api_key: str) -> Any:
        checks.append("check")
        return real(api_key)

    monkeypatch.setattr(authenticator, "authenticate", counted)
    return checks


def _key_id(n: int) -> str:
    return base64.b32encode(n.to_bytes(10, "big")).decode().lower()


def _forged(env: Env, who: str) -> str:
    """The key of ``who`` with its secret changed: right key id, wrong secret."""
    key = env.keys[who]
    return key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")


async def test_failed_api_keys_are_throttled_per_address_without_checking_them(
    env: Env, monkeypatch: pytest.MonkeyPatch, captured: io.StringIO
) -> None:
    limit = env.services.auth_throttle.by_address.limit
    checks = _count_checks(env, monkeypatch)
    # Each guess names another key id, so only the per-address counter can stop them.
    guesses = [f"dxg_{_key_id(n)}_{'x' * 43}" for n in range(limit + 3)]
    async with _client_from(env, "203.0.113.7") as attacker, _client_from(env, "198.51.100.2") as other:
        for guess in guesses[:limit]:
            response = await attacker.get("/v1/agreements", headers={"Authorization": f"Bearer {guess}"})
            assert_problem(response, 401, "unauthenticated")
        # Successes from another address are unaffected and never reset or add to anyone's count.
        for _ in range(3):
            assert (await other.get("/v1/agreements", headers=env.auth("research"))).status_code == 200
        checked = len(checks)
        blocked = await attacker.get("/v1/agreements", headers={"Authorization": f"Bearer {guesses[limit]}"})
        # A key this process verified moments ago still works from here (it is cached: no check), so a working
        # client behind the same address is not locked out; any other key, even a valid one, is refused unchecked.
        recent = await attacker.get("/v1/agreements", headers=env.auth("research"))
        valid = await attacker.get("/v1/disclosures", headers=env.auth("compliance"))
        ui = await attacker.get("/ui/", headers={"Authorization": f"Bearer {guesses[limit + 1]}"})
    problem = assert_problem(blocked, 429, "too-many-failed-authentications")
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert problem["request_id"] == blocked.headers["x-request-id"]
    assert recent.status_code == 200
    assert_problem(valid, 429, "too-many-failed-authentications")
    assert_problem(ui, 429, "too-many-failed-authentications")  # the dashboard's Bearer path: the same counters
    assert len(checks) == checked  # refused without any key check
    assert "x-disclosure-id" not in valid.headers
    texts = [blocked.text, valid.text, json.dumps(dict(blocked.headers)), captured.getvalue()]
    for secret in (*guesses, *(_key_id(n) for n in range(limit + 3)), env.keys["research"], "203.0.113.7"):
        assert all(secret not in text for text in texts)
    assert "auth_failures_limit_reached" in captured.getvalue()


async def test_failures_naming_one_key_id_are_throttled_from_any_address(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = env.services.auth_throttle.by_key_id.limit
    forged = _forged(env, "compliance")
    for n in range(limit):
        async with _client_from(env, f"192.0.2.{n + 1}") as client:
            response = await client.get("/v1/disclosures", headers={"Authorization": f"Bearer {forged}"})
            assert_problem(response, 401, "unauthenticated")
    checks = _count_checks(env, monkeypatch)
    async with _client_from(env, "192.0.2.200") as fresh:
        blocked = await fresh.get("/v1/disclosures", headers={"Authorization": f"Bearer {forged}"})
        other_key = await fresh.get("/v1/disclosures", headers=env.auth("research"))
    assert_problem(blocked, 429, "too-many-failed-authentications")
    assert "retry-after" in blocked.headers and checks == ["check"]  # only the other key was checked
    assert forged not in blocked.text and forged.split("_")[1] not in blocked.text
    assert other_key.status_code == 200


async def test_failed_dashboard_sign_ins_are_throttled(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = env.services.auth_throttle.by_address.limit
    same_origin = {"Sec-Fetch-Site": "same-origin"}
    async with _client_from(env, "203.0.113.50") as browser:
        page = await browser.get("/ui/sign-in")
        token = _csrf(page.text)

        async def attempt(key: str, accept: str = "text/html") -> httpx.Response:
            form = {"csrf_token": token, "api_key": key, "next": ""}
            return await browser.post("/ui/sign-in", data=form, headers={**same_origin, "Accept": accept})

        for n in range(limit):
            wrong = await attempt(f"dxg_{_key_id(n)}_{'y' * 43}")
            assert wrong.status_code == 401
        checks = _count_checks(env, monkeypatch)
        page_429 = await attempt(env.keys["compliance"])
        problem_429 = await attempt("dxg_nope", accept="application/json")
    # A browser gets the sign-in page again, with the reason; a script gets the problem. Both say when to retry.
    assert page_429.status_code == 429 and "Too many failed sign-ins" in page_429.text
    assert 1 <= int(page_429.headers["retry-after"]) <= 60
    assert "dxg_ui_session" not in page_429.headers.get("set-cookie", "")
    assert_problem(problem_429, 429, "too-many-failed-authentications")
    assert "retry-after" in problem_429.headers
    assert checks == []
    assert env.keys["compliance"] not in page_429.text and "dxg_nope" not in problem_429.text
    # Another address signs in as usual.
    async with _client_from(env, "198.51.100.9") as colleague:
        page = await colleague.get("/ui/sign-in")
        form = {"csrf_token": _csrf(page.text), "api_key": env.keys["compliance"], "next": ""}
        signed_in = await colleague.post("/ui/sign-in", data=form, headers=same_origin)
    assert signed_in.status_code == 303
