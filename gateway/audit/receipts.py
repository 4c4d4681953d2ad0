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

__all__ = ["ReceiptReport", "open_proven_entry", "verify_receipt"]


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


def verify_receipt(
    receipt: Any,
    verifier: Verifier,
    *,
    content: bytes | None = None,
    disclosure_id: str | None = None,
    require_completed: bool = True,
) -> ReceiptReport:
    """Check a receipt: both entries of one disclosure, each proven included in the same signed checkpoint.

    A receipt proves a release only with the ``disclosure.started`` *and* the ``disclosure.finished`` entry of the
    same disclosure, the finished one after the started one and (``require_completed``, the default) with status
    ``completed``. With ``content`` the bytes' SHA-256 and length must be what the finished entry records; with
    ``disclosure_id`` (the ``X-Disclosure-Id`` the response carried) the receipt must be for that disclosure.
    """
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
    claimed = receipt.get("disclosure_id")
    if not isinstance(claimed, str) or not claimed:
        report.problems.append("the receipt names no disclosure")
        return report
    if disclosure_id is not None and claimed != disclosure_id:
        report.problems.append("the receipt is for another disclosure than the one expected")
    items = receipt.get("entries")
    if not isinstance(items, list) or not items:
        report.problems.append("the receipt has no entries")
        return report
    for position, item in enumerate(items):
        where = f"entry {position}"
        parsed = open_proven_entry(item, checkpoint)
        if isinstance(parsed, str):
            report.problems.append(f"{where}: {parsed}")
            continue
        if parsed.get("disclosure_id") != claimed:
            report.problems.append(f"{where}: belongs to another disclosure")
            continue
        report.entries.append(parsed)
    _check_pair(report, require_completed=require_completed, content=content)
    return report


def open_proven_entry(item: Any, checkpoint: Checkpoint) -> dict[str, Any] | str:
    """One ``{"entry", "index", "inclusion_proof"}`` item of a receipt, accounting proof or attribution statement:
    the parsed entry, checked canonical, self-indexed and included in the signed ``checkpoint``; or the problem."""
    try:
        body_text, index = item["entry"], item["index"]
        proof = [base64.b64decode(h, validate=True) for h in item["inclusion_proof"]]
        body = body_text.encode("utf-8")
        parsed = json.loads(body)
    except (KeyError, TypeError, ValueError, binascii.Error, AttributeError):
        return "malformed"
    try:
        if not isinstance(parsed, dict) or canonical_json(parsed) != body:
            return "not in canonical form (altered)"
    except CanonicalError:
        return "not in canonical form (altered)"
    if not isinstance(index, int) or parsed.get("index") != index:
        return f"records index {parsed.get('index')}, the proof says {index}"
    try:
        verify_inclusion(leaf_hash(body), index, checkpoint.size, proof, checkpoint.root)
    except (TlogError, ValueError, TypeError) as exc:
        return f"log index {index}: not included in the signed tree: {exc}"
    return parsed


def _check_pair(report: ReceiptReport, *, require_completed: bool, content: bytes | None) -> None:
    started = [e for e in report.entries if e.get("type") == "disclosure.started"]
    finished = [e for e in report.entries if e.get("type") == "disclosure.finished"]
    others = [e for e in report.entries if e.get("type") not in ("disclosure.started", "disclosure.finished")]
    for entry in others:
        kind = entry.get("type")
        report.problems.append(f"log index {entry.get('index')}: a {kind!r} entry is not part of a receipt")
    if len(started) != 1:
        report.problems.append(
            "the receipt has no verified disclosure.started entry"
            if not started
            else "the receipt has more than one disclosure.started entry"
        )
    if len(finished) != 1:
        report.problems.append(
            "the receipt has no verified disclosure.finished entry: the disclosure never finished (still running, "
            "or the gateway stopped mid-release) or the entry was removed, so it does not prove what was released"
            if not finished
            else "the receipt has more than one disclosure.finished entry"
        )
    if len(started) != 1 or len(finished) != 1:
        return
    start, end = started[0], finished[0]
    if not end["index"] > start["index"]:
        report.problems.append("the finished entry comes before the started entry in the log")
    status = end.get("status")
    if require_completed and status != "completed":
        report.problems.append(
            f"the disclosure ended {status!r}, not 'completed': the log does not record a full release"
        )
    if content is not None and (
        end.get("sha256") != hashlib.sha256(content).hexdigest() or end.get("bytes") != len(content)
    ):
        report.problems.append("the content's SHA-256 or size differs from what the log records as sent")
