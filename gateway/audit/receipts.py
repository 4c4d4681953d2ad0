"""Offline verification of a disclosure receipt: entry → leaf → inclusion proof → signed checkpoint.

A receipt is self-contained: with only the log's public key, a requester can prove what it was given (and a registry
what it released), and anyone can check that the entry is in the log the gateway signed. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tlog import (
    CanonicalError,
    Checkpoint,
    TlogError,
    Verifier,
    canonical_json,
    leaf_hash,
    open_checkpoint,
    verify_inclusion,
)

__all__ = ["ReceiptReport", "verify_receipt"]


@dataclass
class ReceiptReport:
    problems: list[str] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _origin(note: str) -> str:
    return note.split("\n", 1)[0]


def verify_receipt(receipt: Any, verifier: Verifier, *, content: bytes | None = None) -> ReceiptReport:
    report = ReceiptReport()
    if not isinstance(receipt, dict) or receipt.get("format") != "dx-gateway-receipt-v1":
        report.problems.append("not a dx-gateway receipt (format dx-gateway-receipt-v1)")
        return report
    note = receipt.get("checkpoint")
    if not isinstance(note, str):
        report.problems.append("the receipt has no checkpoint")
        return report
    try:
        checkpoint = open_checkpoint(note, _origin(note), verifier)
    except TlogError as exc:
        report.problems.append(f"checkpoint signature or format invalid: {exc}")
        return report
    report.checkpoint = checkpoint
    if receipt.get("tree_size") != checkpoint.size:
        report.problems.append("tree_size does not match the signed checkpoint")
    disclosure_id = receipt.get("disclosure_id")
    items = receipt.get("entries")
    if not isinstance(items, list) or not items:
        report.problems.append("the receipt has no entries")
        return report
    for position, item in enumerate(items):
        where = f"entry {position}"
        try:
            body_text = item["entry"]
            index = item["index"]
            proof = [base64.b64decode(h, validate=True) for h in item["inclusion_proof"]]
            body = body_text.encode("utf-8")
            parsed = json.loads(body)
        except (KeyError, TypeError, ValueError, binascii.Error):
            report.problems.append(f"{where}: malformed")
            continue
        try:
            if canonical_json(parsed) != body:
                report.problems.append(f"{where}: not in canonical form (altered)")
                continue
        except CanonicalError:
            report.problems.append(f"{where}: not in canonical form (altered)")
            continue
        if parsed.get("index") != index:
            report.problems.append(f"{where}: records index {parsed.get('index')}, receipt says {index}")
        if parsed.get("disclosure_id") != disclosure_id:
            report.problems.append(f"{where}: belongs to another disclosure")
        try:
            verify_inclusion(leaf_hash(body), index, checkpoint.size, proof, checkpoint.root)
        except (TlogError, ValueError) as exc:
            report.problems.append(f"{where} (log index {index}): not included in the signed tree: {exc}")
            continue
        report.entries.append(parsed)
    if content is not None:
        finished = [e for e in report.entries if e.get("type") == "disclosure.finished"]
        if not finished:
            report.problems.append("no verified finished entry to compare the content with")
        else:
            entry = finished[0]
            if entry.get("sha256") != hashlib.sha256(content).hexdigest() or entry.get("bytes") != len(content):
                report.problems.append("the content's SHA-256 or size differs from what the log records as sent")
    return report
