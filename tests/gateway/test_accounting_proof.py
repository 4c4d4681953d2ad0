"""The accounting of disclosures for one child, with proof (`POST /v1/subjects/disclosures/proof`), checked offline by
`gateway receipt verify`: attacks on the document (a subject removed from the set, a forged count, an edited entry,
a checkpoint signed by another key, a proof passed off for another child) fail; so does the issue's attack, subject
index rows deleted in the database (verify exits 1, and no proof is made over the edited set)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.accounting_proof import membership_proof, verify_accounting_proof
from gateway.audit.signer import LogSigner, LogVerifier
from gateway.audit.subjects import LogKeys, release_order
from gateway.audit.verify import verify_log
from gateway.cli.main import main
from keys import SecretBytes, SigningKey
from tests.gateway.harness import Env
from tests.gateway.test_extract_http import assert_problem
from tlog import (
    Checkpoint,
    ProofError,
    RootAccumulator,
    canonical_json,
    leaf_hash,
    open_checkpoint,
    sign_checkpoint,
    verify_inclusion,
)

pytestmark = pytest.mark.anyio
PROOF = "/v1/subjects/disclosures/proof"


async def _activity(env: Env, registry_path: Path) -> tuple[str, list[str]]:
    """One child released by two research extracts and a school lookup, among others; returns (child id, the
    disclosure ids that include it)."""
    child, student, limit = env.first_enrolled_released(registry_path)
    ids = []
    async with env.client() as client:
        for _ in range(2):
            extract = await client.post(
                "/v1/agreements/research-continuity/extract", headers=env.auth("research"), json={"limit": limit + 20}
            )
            assert extract.status_code == 200, extract.text
            ids.append(extract.headers["x-disclosure-id"])
        record = await client.post(
            "/v1/agreements/school-transfer/extract",
            headers=env.auth("school"),
            json={"filters": {"student_number": {"eq": student}}},
        )
        assert record.status_code == 200, record.text
        ids.append(record.headers["x-disclosure-id"])
    env.flush()
    return child, ids


def _verifier(env: Env) -> LogVerifier:
    signer = env.services.signer
    assert signer is not None
    return LogVerifier(signer.public_key)


async def _proof(env: Env, child: str) -> Any:
    async with env.client() as client:
        return await client.post(PROOF, headers=env.auth("compliance"), json={"subject_id": child})


async def _document(env: Env, child: str) -> dict[str, Any]:
    response = await _proof(env, child)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def test_the_accounting_with_proof_verifies_offline(env: Env, registry_path: Path, tmp_path: Path) -> None:
    child, ids = await _activity(env, registry_path)
    document = await _document(env, child)
    async with env.client() as client:
        plain = await client.post(
            "/v1/subjects/disclosures", headers=env.auth("compliance"), json={"subject_id": child}
        )
    assert [d["disclosure_id"] for d in document["disclosures"]] == [d["id"] for d in plain.json()["disclosures"]]
    assert set(ids) <= {d["disclosure_id"] for d in document["disclosures"]}
    assert document["subject_hash"] == LogKeys.of(env.services.keyring).subject(child).hex()
    assert child not in json.dumps(document)  # the hash, never the id
    report = verify_accounting_proof(document, _verifier(env))
    assert report.ok, report.problems
    assert set(report.proven) == {d["disclosure_id"] for d in document["disclosures"]} and not report.unproven

    # The command-line verifier accepts the document as it accepts a receipt.
    (tmp_path / "proof.json").write_text(json.dumps(document), encoding="utf-8")
    signer = env.services.signer
    assert signer is not None
    (tmp_path / "log.pub").write_text(signer.public_key.to_pem(), encoding="utf-8")  # type: ignore[attr-defined]
    args = ["receipt", "verify", str(tmp_path / "proof.json"), "--public-key", str(tmp_path / "log.pub")]
    assert main(args) == 0
    assert main([*args, "--subject-hash", document["subject_hash"]]) == 0
    assert main([*args, "--subject-hash", "00" * 16]) == 1


async def test_only_compliance_gets_proofs(env: Env, registry_path: Path) -> None:
    child, _ = await _activity(env, registry_path)
    async with env.client() as client:
        denied = await client.post(PROOF, headers=env.auth("research"), json={"subject_id": child})
        anonymous = await client.post(PROOF, json={"subject_id": child})
        malformed = await client.post(PROOF, headers=env.auth("compliance"), json={"subject": child})
    assert_problem(denied, 403)
    assert anonymous.status_code == 401
    assert malformed.status_code in (400, 422) and child not in malformed.text


def _finished_item(document: dict[str, Any]) -> dict[str, Any]:
    """The first listed disclosure with a membership proof over more than one subject (an extract)."""
    return next(d for d in document["disclosures"] if d["membership"] and d["membership"]["count"] > 1)


def _refused(env: Env, document: dict[str, Any], *words: str) -> list[str]:
    report = verify_accounting_proof(document, _verifier(env))
    assert not report.ok
    assert any(all(w in p for w in words) for p in report.problems), report.problems
    return report.problems


async def test_attacks_on_the_document_fail(env: Env, registry_path: Path) -> None:
    child, _ = await _activity(env, registry_path)
    document = await _document(env, child)
    item = _finished_item(document)
    finished = json.loads(item["entries"][-1]["entry"])
    agreement = json.loads(item["entries"][0]["entry"])["agreement"]["id"]
    with env.engine.connect() as conn:
        query = sa.text("SELECT subject_hash FROM subject_index WHERE disclosure_seq = :s")
        released = [bytes(r[0]) for r in conn.execute(query, {"s": item["entries"][0]["index"]})]
    me = bytes.fromhex(document["subject_hash"])

    # 1. a subject removed from the set: the proof is over n - 1 leaves, not the n the signed entry commits to
    removed = copy.deepcopy(document)
    other = next(h for h in released if h != me)
    smaller = membership_proof([h for h in released if h != other], me, release_order(agreement))
    assert smaller is not None
    _finished_item(removed)["membership"] = smaller.describe()
    _refused(env, removed, "over", str(finished["subjects"]["count"]))
    # ... and with the count forged to the committed one, the path does not lead to the committed root
    _finished_item(removed)["membership"]["count"] = finished["subjects"]["count"]
    _refused(env, removed, "not proven a member")

    # 2. a forged count
    forged = copy.deepcopy(document)
    _finished_item(forged)["membership"]["count"] += 1
    _refused(env, forged, "commits to")

    # 3. an entry edited (the finished entry now commits to the smaller set): no longer in the signed tree
    edited = copy.deepcopy(document)
    body = dict(finished, subjects={"count": smaller.count, "root": smaller.root.hex()})
    _finished_item(edited)["entries"][-1]["entry"] = canonical_json(body).decode()
    _finished_item(edited)["membership"] = smaller.describe()
    _refused(env, edited, "not included in the signed tree")

    # 4. a checkpoint signed by another key (same size and root)
    foreign = copy.deepcopy(document)
    real = open_checkpoint(document["checkpoint"], document["checkpoint"].split("\n", 1)[0], _verifier(env))
    other_key = LogSigner(SigningKey.from_seed(SecretBytes(b"\x09" * 32)))
    foreign["checkpoint"] = sign_checkpoint(Checkpoint(real.origin, real.size, real.root), real.origin, other_key)
    _refused(env, foreign, "checkpoint signature")

    # 5. the proof passed off as another child's: its membership does not hold for that hash
    elsewhere = copy.deepcopy(document)
    elsewhere["subject_hash"] = other.hex()
    _refused(env, elsewhere, "not proven a member")

    # 6. a disclosure dropped from the list while the count still says how many there were
    dropped = copy.deepcopy(document)
    dropped["disclosures"] = dropped["disclosures"][1:]
    _refused(env, dropped, "count says")

    # 7. a membership proof stripped from a finished disclosure (to list it as unprovable)
    stripped = copy.deepcopy(document)
    _finished_item(stripped)["membership"] = None
    _refused(env, stripped, "no membership proof")

    # a proof hash flipped
    flipped = copy.deepcopy(document)
    path = _finished_item(flipped)["membership"]["proof"]
    path[0] = base64.b64encode(bytes(32)).decode()
    _refused(env, flipped, "not proven a member")


async def test_deleted_index_rows_fail_verify_and_no_proof_is_made(env: Env, registry_path: Path) -> None:
    """The issue's attack: index rows deleted so that the accounting shrinks. Verify exits 1 naming the disclosure;
    the proof endpoint refuses to prove membership in the edited set (409), never answering from it."""
    child, ids = await _activity(env, registry_path)
    me = LogKeys.of(env.services.keyring).subject(child)
    before = await _document(env, child)
    with env.engine.begin() as conn:
        seq = conn.execute(sa.text("SELECT start_seq FROM disclosures WHERE id = :i"), {"i": ids[0]}).scalar_one()
        # five other children of the first extract, and this child from the second one
        conn.execute(
            sa.text(
                "DELETE FROM subject_index WHERE disclosure_seq = :s AND subject_hash IN (SELECT subject_hash FROM "
                "subject_index WHERE disclosure_seq = :s AND subject_hash != :me LIMIT 5)"
            ),
            {"s": seq, "me": me},
        )
        second = conn.execute(sa.text("SELECT start_seq FROM disclosures WHERE id = :i"), {"i": ids[1]}).scalar_one()
        conn.execute(
            sa.text("DELETE FROM subject_index WHERE disclosure_seq = :s AND subject_hash = :me"),
            {"s": second, "me": me},
        )
    report = verify_log(env.engine, _verifier(env))
    assert not report.ok
    assert any(f"log index {seq}" in p and "rows deleted" in p for p in report.problems), report.problems
    assert any(f"log index {second}" in p for p in report.problems), report.problems
    refused = await _proof(env, child)
    problem = assert_problem(refused, 409, "log-projection-mismatch")
    assert ids[0] in problem["detail"] and child not in refused.text
    assert before["count"] == len(before["disclosures"]) >= 3


# -- the membership proof itself ---------------------------------------------------------------------------------------


@given(st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=60, unique=True), st.data())
def test_a_member_proves_to_the_commitment_and_a_non_member_does_not(leaves: list[bytes], data: st.DataObject) -> None:
    order = release_order("agr")
    acc = RootAccumulator()
    acc.extend(sorted(leaves, key=order))  # what a finished entry commits to
    member = data.draw(st.sampled_from(leaves))
    proof = membership_proof(list(reversed(leaves)), member, order)  # the index, in any order
    assert proof is not None and proof.count == acc.size and proof.root == acc.root()
    verify_inclusion(leaf_hash(member), proof.position, proof.count, proof.proof, acc.root())
    outsider = data.draw(st.binary(min_size=16, max_size=16).filter(lambda h: h not in leaves))
    assert membership_proof(leaves, outsider, order) is None
    with pytest.raises(ProofError):  # the member's path does not hold for another hash
        verify_inclusion(leaf_hash(outsider), proof.position, proof.count, proof.proof, acc.root())
