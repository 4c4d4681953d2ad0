"""The entries of the disclosure log: what a write-ahead entry, a final entry and an event say, and their canonical
bodies (RFC 8785 JSON, with the log index spliced in where canonical ordering puts it)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.db import utcnow
from tlog.canonical import canonical_json

__all__ = [
    "FINAL_STATUSES",
    "DisclosureFinish",
    "DisclosureStart",
    "EntryParts",
    "LogEvent",
    "entry_kind",
    "entry_time",
    "leaf_hash_hex",
    "make_finish",
]

FINAL_STATUSES = frozenset({"completed", "aborted", "failed"})


def leaf_hash_hex(body: bytes) -> str:
    return hashlib.sha256(b"\x00" + body).hexdigest()


def _ts(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class DisclosureStart:
    disclosure_id: str
    request_id: str
    principal: str
    agreement_id: str
    agreement_version: int
    agreement_digest: str
    approved_by: str
    legal_basis: str
    purpose: str
    operation: str
    plan: Mapping[str, Any]
    started_at: dt.datetime = field(default_factory=utcnow)
    #: who accepted the version's measured risk above the catalog threshold, why, and the figures (None: not needed)
    risk_acceptance: Mapping[str, Any] | None = None

    def entry(self) -> dict[str, Any]:
        entry = {
            "type": "disclosure.started",
            "disclosure_id": self.disclosure_id,
            "request_id": self.request_id,
            "time": _ts(self.started_at),
            "recipient": self.principal,
            "agreement": {"id": self.agreement_id, "version": self.agreement_version, "digest": self.agreement_digest},
            "approved_by": self.approved_by,
            "legal_basis": self.legal_basis,
            "purpose": self.purpose,
            "operation": self.operation,
            "plan": dict(self.plan),
        }
        if self.risk_acceptance is not None:
            # Only then: entries of versions within the threshold keep the shape they always had.
            entry["risk_acceptance"] = dict(self.risk_acceptance)
        return entry


@dataclass(frozen=True, slots=True)
class DisclosureFinish:
    disclosure_id: str
    status: str
    rows: int
    nbytes: int
    sha256: str | None
    error: str | None
    details: Mapping[str, Any] | None
    finished_at: dt.datetime
    #: the subject-set commitment: {"count", "root"} over the subject-index hashes in release order
    subjects: Mapping[str, Any] | None = None

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "disclosure.finished",
            "disclosure_id": self.disclosure_id,
            "time": _ts(self.finished_at),
            "status": self.status,
            "rows": self.rows,
            "bytes": self.nbytes,
            "sha256": self.sha256,
            "error": self.error,
        }
        if self.details:
            entry["details"] = dict(self.details)
        if self.subjects is not None:
            entry["subjects"] = dict(self.subjects)
        return entry


_EVENT_TYPE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")


@dataclass(frozen=True, slots=True)
class LogEvent:
    """A log entry that is not a disclosure: agreement state changes, alerts, key lifecycle, approvals.

    It goes through the same group commit and Merkle tree as disclosures but touches no other table (the disclosures
    table is only for disclosures). Build it with :meth:`of`, which checks the entry before it reaches the writer.
    """

    body: Mapping[str, Any]
    created_at: dt.datetime
    disclosure_id: None = None

    @classmethod
    def of(cls, entry: Mapping[str, Any], *, at: dt.datetime | None = None) -> LogEvent:
        kind = entry.get("type")
        if not isinstance(kind, str) or not _EVENT_TYPE.match(kind) or kind.startswith("disclosure."):
            raise ValueError("an event needs a dotted lowercase 'type' outside the reserved 'disclosure.' family")
        if "index" in entry:
            raise ValueError("'index' is assigned by the log")
        moment = at or utcnow()
        body = {"time": _ts(moment), **entry}
        canonical_json(body)  # refuse floats, huge ints and odd types here, not in the writer thread
        return cls(body, moment)

    @property
    def kind(self) -> str:
        return str(self.body["type"])

    def entry(self) -> dict[str, Any]:
        return dict(self.body)


def make_finish(
    disclosure_id: str,
    status: str,
    rows: int,
    nbytes: int,
    sha256: str | None,
    error: str | None,
    details: Mapping[str, Any] | None,
    subjects: Mapping[str, Any] | None = None,
) -> DisclosureFinish:
    if status not in FINAL_STATUSES:
        raise ValueError(f"unknown final status {status!r}")
    return DisclosureFinish(disclosure_id, status, rows, nbytes, sha256, error, details, utcnow(), subjects)


def entry_kind(op: DisclosureStart | DisclosureFinish | LogEvent) -> str:
    if isinstance(op, LogEvent):
        return op.kind
    return "disclosure.started" if isinstance(op, DisclosureStart) else "disclosure.finished"


def entry_time(op: DisclosureStart | DisclosureFinish | LogEvent) -> dt.datetime:
    if isinstance(op, LogEvent):
        return op.created_at
    return op.started_at if isinstance(op, DisclosureStart) else op.finished_at


class EntryParts:
    """An entry's canonical JSON without its index, split where ``"index"`` sorts in: the writer (one thread, the
    log's serial section) only has to splice in the number. Built in the caller's thread."""

    __slots__ = ("head", "plan", "tail")

    def __init__(self, entry: Mapping[str, Any], plan: Mapping[str, Any] | None = None) -> None:
        if "index" in entry or not all(k.isascii() for k in entry):
            # Top-level keys are fixed ASCII names (code-point order is RFC 8785's UTF-16 order there).
            raise ValueError("entry keys must be ASCII and must not include 'index'")
        before = canonical_json({k: v for k, v in entry.items() if k < "index"})
        after = canonical_json({k: v for k, v in entry.items() if k > "index"})
        self.head = before[:-1] + (b"," if len(before) > 2 else b"") + b'"index":'
        self.tail = (b"," if len(after) > 2 else b"") + after[1:]
        #: the disclosures table's copy of a start's plan, canonical too
        self.plan = canonical_json(dict(plan)).decode("utf-8") if plan is not None else None

    def body(self, index: int) -> bytes:
        """Exactly ``canonical_json({"index": index, **entry})``."""
        return self.head + str(index).encode("ascii") + self.tail
