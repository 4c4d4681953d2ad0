"""The disclosure log: a write-ahead record of every release, durable before the first byte leaves.

Each disclosure produces two append-only leaves: ``disclosure.started`` (who, agreement id + version + digest,
approver, legal basis, purpose, the plan: fields with operators, conditions, limit) written and committed before the
registry is even queried, and ``disclosure.finished`` (status, rows, bytes, SHA-256 of the released bytes). A crash in
between leaves only the first, which compliance sees as a disclosure that never finished. If the first cannot be
written, the request fails with 503 and nothing is released: like an audit device that cannot record.

Leaves are canonical JSON with RFC 6962 leaf hashes, assigned consecutive indexes under a row lock on ``log_head``
(no gaps, no duplicates, also with many processes on one PostgreSQL). The Merkle tree and signed checkpoints are built
over these leaves.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from .canonical import canonical_json
from .db import DisclosureRow, LogEntryRow, LogHeadRow, utcnow
from .errors import AuditUnavailableError

__all__ = [
    "DisclosureLog",
    "DisclosureStart",
    "MemoryDisclosureLog",
    "SqlDisclosureLog",
    "leaf_hash_hex",
]

_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
_head = LogHeadRow.__table__  # type: ignore[attr-defined]

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

    def entry(self) -> dict[str, Any]:
        return {
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


class DisclosureLog(Protocol):
    def start(self, start: DisclosureStart) -> int: ...

    def finish(
        self, disclosure_id: str, *, status: str, rows: int, nbytes: int, sha256: str | None, error: str | None = None
    ) -> int: ...

    def ping(self) -> None: ...


def _finish_entry(
    disclosure_id: str, status: str, rows: int, nbytes: int, sha256: str | None, error: str | None, moment: dt.datetime
) -> dict[str, Any]:
    if status not in FINAL_STATUSES:
        raise ValueError(f"unknown final status {status!r}")
    return {
        "type": "disclosure.finished",
        "disclosure_id": disclosure_id,
        "time": _ts(moment),
        "status": status,
        "rows": rows,
        "bytes": nbytes,
        "sha256": sha256,
        "error": error,
    }


class SqlDisclosureLog:
    """The log in the gateway database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _append(
        self, conn: Connection, kind: str, disclosure_id: str | None, entry: dict[str, Any], moment: dt.datetime
    ) -> int:
        # The UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite): concurrent appenders queue here,
        # each gets the next index, and a rollback gives it back, so indexes have no gaps and no duplicates.
        size = conn.execute(
            sa.update(_head).where(_head.c.id == 1).values(size=_head.c.size + 1).returning(_head.c.size)
        ).scalar_one()
        seq = int(size) - 1
        body = canonical_json({"index": seq, **entry})
        conn.execute(
            sa.insert(_entries).values(
                seq=seq,
                kind=kind,
                disclosure_id=disclosure_id,
                body=body.decode("utf-8"),
                leaf_hash=leaf_hash_hex(body),
                created_at=moment,
            )
        )
        return seq

    def start(self, start: DisclosureStart) -> int:
        try:
            with self._engine.begin() as conn:
                seq = self._append(conn, "disclosure.started", start.disclosure_id, start.entry(), start.started_at)
                conn.execute(
                    sa.insert(_disclosures).values(
                        id=start.disclosure_id,
                        request_id=start.request_id,
                        principal=start.principal,
                        agreement_id=start.agreement_id,
                        agreement_version=start.agreement_version,
                        agreement_digest=start.agreement_digest,
                        approved_by=start.approved_by,
                        legal_basis=start.legal_basis,
                        purpose=start.purpose,
                        operation=start.operation,
                        status="started",
                        started_at=start.started_at,
                        rows=0,
                        bytes=0,
                        start_seq=seq,
                        plan=canonical_json(dict(start.plan)).decode("utf-8"),
                    )
                )
            return seq
        except SQLAlchemyError as exc:
            raise AuditUnavailableError(
                "the disclosure log cannot be written, so nothing was released; try again later or tell the "
                "gateway operator"
            ) from exc

    def finish(
        self, disclosure_id: str, *, status: str, rows: int, nbytes: int, sha256: str | None, error: str | None = None
    ) -> int:
        moment = utcnow()
        entry = _finish_entry(disclosure_id, status, rows, nbytes, sha256, error, moment)
        try:
            with self._engine.begin() as conn:
                seq = self._append(conn, "disclosure.finished", disclosure_id, entry, moment)
                conn.execute(
                    sa.update(_disclosures)
                    .where(_disclosures.c.id == disclosure_id)
                    .values(
                        status=status,
                        finished_at=moment,
                        rows=rows,
                        bytes=nbytes,
                        sha256=sha256,
                        finish_seq=seq,
                        error=error,
                    )
                )
            return seq
        except SQLAlchemyError as exc:
            raise AuditUnavailableError("the disclosure log cannot be written") from exc

    def ping(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.select(_head.c.size)).scalar_one()
        except SQLAlchemyError as exc:
            raise AuditUnavailableError("the gateway database is not reachable") from exc


class MemoryDisclosureLog:
    """In-memory fake with the same contract; ``failing = True`` simulates a log that cannot be written."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.failing = False
        self._lock = threading.Lock()

    def _append(self, entry: dict[str, Any]) -> int:
        if self.failing:
            raise AuditUnavailableError("the disclosure log cannot be written, so nothing was released")
        with self._lock:
            seq = len(self.entries)
            self.entries.append({"index": seq, **entry})
            return seq

    def start(self, start: DisclosureStart) -> int:
        return self._append(start.entry())

    def finish(
        self, disclosure_id: str, *, status: str, rows: int, nbytes: int, sha256: str | None, error: str | None = None
    ) -> int:
        return self._append(_finish_entry(disclosure_id, status, rows, nbytes, sha256, error, utcnow()))

    def ping(self) -> None:
        if self.failing:
            raise AuditUnavailableError("the disclosure log is not reachable")
