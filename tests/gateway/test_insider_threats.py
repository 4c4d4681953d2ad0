"""Attacks from the "no single insider" review, run through the real app; each asserts the attack now fails."""

from __future__ import annotations

import base64
import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
