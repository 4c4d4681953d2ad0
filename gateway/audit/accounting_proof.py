"""Accounting of disclosures with proof: for one subject, each disclosure's signed entries and the subject's
membership in the set of subjects the disclosure committed to. Pure: no I/O (the builder's reads are in
:mod:`gateway.audit.accounting_build`).

A proof document (``dx-gateway-accounting-proof-v1``) holds one signed checkpoint and, per disclosure:

* its ``disclosure.started`` and (when it finished) ``disclosure.finished`` entries, canonical JSON, each with its
  RFC 9162 inclusion proof to the checkpoint (as in a receipt);
* ``membership``: the position of the subject's hash among the ``count`` subjects the finished entry commits to
  (leaves in release order, leaf = SHA-256(0x00 || hash)), with the RFC 9162 inclusion proof to the committed root.

What a third party proves with only the log's public key: the gateway signed a log in which each listed disclosure
released a set of subjects containing this 16-byte hash. The hash is an HMAC under the log's secret subject key, so
it alone cannot say which child it is: the compliance officer, who computed it from the child's id, vouches for
that. A disclosure that never finished (crash) has no commitment: it is listed, its write-ahead entry proven, its
membership not provable (``unproven``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.receipts import open_proven_entry
from tlog import (
    Checkpoint,
    MemoryTree,
    TlogError,
    Verifier,
    inclusion_proof,
    leaf_hash,
    open_checkpoint,
    verify_inclusion,
)

__all__ = [
    "ACCOUNTING_PROOF_FORMAT",
    "AccountingProofReport",
    "Membership",
    "membership_proof",
    "verify_accounting_proof",
]

ACCOUNTING_PROOF_FORMAT = "dx-gateway-accounting-proof-v1"


@dataclass(frozen=True, slots=True)
class Membership:
    position: int
    count: int
    root: bytes
    proof: list[bytes] = field(repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "count": self.count,
            "proof": [base64.b64encode(h).decode("ascii") for h in self.proof],
        }


def membership_proof(subjects: Sequence[bytes], subject: bytes, order: Callable[[bytes], bytes]) -> Membership | None:
    """The membership of ``subject`` in the set ``subjects`` (as the subject index holds it, any order), in the tree
    the commitment is over: leaves in release order. None when ``subject`` is not in the set. O(n) memory."""
    ordered = sorted(set(subjects), key=order)
    try:
        position = ordered.index(subject)
    except ValueError:
        return None
    tree = MemoryTree(leaf_hash(h) for h in ordered)
    return Membership(position, len(ordered), tree.root(), inclusion_proof(tree, position, len(ordered)))


@dataclass
class AccountingProofReport:
    problems: list[str] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    #: disclosure ids whose membership is proven / listed but not provable (never finished, or no commitment)
    proven: list[str] = field(default_factory=list)
    unproven: list[str] = field(default_factory=list)
    subject_hash: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_membership(item: Any, finished: dict[str, Any], subject: bytes) -> str | None:
    commitment = finished.get("subjects")
    if not isinstance(commitment, dict):
        return None  # checked by the caller: a finished entry without a commitment is unproven
    member = item.get("membership")
    if not isinstance(member, dict):
        return "no membership proof for a disclosure whose finished entry commits to its subjects"
    try:
        position, count = member["position"], member["count"]
        proof = [base64.b64decode(h, validate=True) for h in member["proof"]]
        root = bytes.fromhex(str(commitment["root"]))
        committed = commitment["count"]
    except (KeyError, TypeError, ValueError, binascii.Error):
        return "malformed membership proof"
    if not isinstance(count, int) or not isinstance(position, int) or count != committed:
        return f"the membership proof is over {count} subjects, the signed finished entry commits to {committed}"
    try:
        verify_inclusion(leaf_hash(subject), position, count, proof, root)
    except (TlogError, ValueError, TypeError) as exc:
        return f"the subject is not proven a member of the committed subject set: {exc}"
    return None


def _check_disclosure(item: Any, checkpoint: Checkpoint, subject: bytes, report: AccountingProofReport) -> None:
    disclosure_id = item.get("disclosure_id") if isinstance(item, dict) else None
    if not isinstance(disclosure_id, str) or not disclosure_id:
        report.problems.append("a listed disclosure has no id")
        return
    where = f"disclosure {disclosure_id}"
    entries: list[dict[str, Any]] = []
    for raw in item.get("entries") or []:
        opened = open_proven_entry(raw, checkpoint)
        if isinstance(opened, str):
            report.problems.append(f"{where}: {opened}")
            return
        if opened.get("disclosure_id") != disclosure_id:
            report.problems.append(f"{where}: an entry of another disclosure (log index {opened.get('index')})")
            return
        entries.append(opened)
    started = [e for e in entries if e.get("type") == "disclosure.started"]
    finished = [e for e in entries if e.get("type") == "disclosure.finished"]
    if len(started) != 1 or len(finished) > 1 or len(entries) != len(started) + len(finished):
        report.problems.append(f"{where}: needs exactly one started entry and at most one finished entry")
        return
    if not finished:
        report.unproven.append(disclosure_id)  # never finished: counted, to be safe; nothing commits to its subjects
        return
    if finished[0]["index"] <= started[0]["index"]:
        report.problems.append(f"{where}: the finished entry comes before the started entry")
        return
    problem = _check_membership(item, finished[0], subject)
    if problem is not None:
        report.problems.append(f"{where} (log index {finished[0]['index']}): {problem}")
    elif isinstance(finished[0].get("subjects"), dict):
        report.proven.append(disclosure_id)
    else:
        report.unproven.append(disclosure_id)  # finished before commitments existed


def verify_accounting_proof(
    document: Any, verifier: Verifier, *, subject_hash: str | None = None
) -> AccountingProofReport:
    """Check an accounting-proof document offline. ``subject_hash`` (hex), when given, must be the document's."""
    report = AccountingProofReport()
    if not isinstance(document, dict) or document.get("format") != ACCOUNTING_PROOF_FORMAT:
        report.problems.append(f"not an accounting proof (format {ACCOUNTING_PROOF_FORMAT})")
        return report
    try:
        subject = bytes.fromhex(str(document["subject_hash"]))
        note = document["checkpoint"]
        items = document["disclosures"]
        if len(subject) != 16 or not isinstance(note, str) or not isinstance(items, list):
            raise ValueError
    except (KeyError, ValueError):
        report.problems.append("malformed accounting proof (subject_hash, checkpoint, disclosures)")
        return report
    report.subject_hash = subject.hex()
    if subject_hash is not None and subject_hash.lower() != report.subject_hash:
        report.problems.append("the proof is for another subject hash than the one expected")
    try:
        checkpoint = open_checkpoint(note, note.split("\n", 1)[0], verifier)
    except TlogError as exc:
        report.problems.append(f"checkpoint signature or format invalid: {exc}")
        return report
    report.checkpoint = checkpoint
    if document.get("tree_size") != checkpoint.size:
        report.problems.append("tree_size does not match the signed checkpoint")
    if document.get("count") != len(items):
        report.problems.append(f"count says {document.get('count')} disclosures but {len(items)} are listed")
    ids = [item.get("disclosure_id") if isinstance(item, dict) else None for item in items]
    if len(set(ids)) != len(ids):
        report.problems.append("a disclosure is listed twice")
    for item in items:
        _check_disclosure(item, checkpoint, subject, report)
    return report
