"""Read side of the disclosure log: entries, checkpoints, proofs, disclosures, the subject index.

Nothing here writes. Proofs are computed from stored perfect-subtree nodes in O(log n) reads (one query per proof).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.audit.cosignatures import cosigned_note, quorum_checkpoint
from gateway.audit.log import DisclosureLog
from gateway.db import CheckpointRow, DisclosureRow, LogEntryRow, LogHeadRow, LogNodeRow, SubjectIndexRow
from gateway.errors import AuditUnavailableError
from tlog import NodeId, consistency_plan, fold_right, inclusion_plan, root_ids

__all__ = ["ACCOUNTING_FIELDS", "DisclosureQuery", "LogReader", "accounting_json", "build_receipt", "disclosure_json"]

_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
_head = LogHeadRow.__table__  # type: ignore[attr-defined]
_nodes = LogNodeRow.__table__  # type: ignore[attr-defined]
_checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]
_subjects = SubjectIndexRow.__table__  # type: ignore[attr-defined]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


#: What an accounting of disclosures for one child lists (HIPAA 164.528: date, recipient, description, purpose;
#: plus legal basis, agreement and approver): the compliance API, its OpenAPI schema and the dashboard use this.
ACCOUNTING_FIELDS = (
    "id",
    "started_at",
    "recipient",
    "purpose",
    "legal_basis",
    "agreement",
    "approved_by",
    "description",
    "operation",
    "status",
)


def accounting_json(row: Any, *extra: str) -> dict[str, Any]:
    """One disclosure as an accounting lists it: ``ACCOUNTING_FIELDS``, then ``extra`` fields of ``disclosure_json``."""
    item = disclosure_json(row)
    return {k: item[k] for k in (*ACCOUNTING_FIELDS, *extra)}


def disclosure_json(row: Any) -> dict[str, Any]:
    """A disclosure as the compliance API shows it: the accounting fields of HIPAA 164.528 and more."""
    plan = json.loads(row.plan)
    return {
        "id": row.id,
        "status": row.status,
        "operation": row.operation,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "recipient": row.principal,
        "purpose": row.purpose,
        "legal_basis": row.legal_basis,
        "agreement": {"id": row.agreement_id, "version": row.agreement_version, "digest": row.agreement_digest},
        "approved_by": row.approved_by,
        "description": {
            "dataset": plan.get("dataset"),
            "fields": plan.get("fields", []),
            "filters": plan.get("filters", []),
            "limit": plan.get("limit"),
        },
        "rows": row.rows,
        "bytes": row.bytes,
        "sha256": row.sha256,
        "error": row.error,
        "details": json.loads(row.details) if row.details else None,
        "log_index": {"started": row.start_seq, "finished": row.finish_seq},
        "request_id": row.request_id,
    }


@dataclass(frozen=True, slots=True)
class DisclosureQuery:
    agreement: str | None = None
    principal: str | None = None
    purpose: str | None = None
    status: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    before_seq: int | None = None  # cursor: entries older than this start index
    limit: int = 100


def _released() -> sa.ColumnElement[bool]:
    """Disclosures that may have sent something: still ``started`` (a crash; counted, to be safe) or finished with
    rows. A single-record lookup indexes its subject with the write-ahead entry, before it knows whether the record
    exists; when it released nothing, the subject it asked for is not part of the accounting."""
    return sa.or_(_disclosures.c.status == "started", _disclosures.c.rows > 0)


class LogReader:
    """Reads of the log's tables. ``flush`` (the process's log writer's) runs before each read, so a reader sees
    every entry this process queued before it, final entries written without waiting included."""

    def __init__(
        self,
        engine: Engine,
        *,
        flush: Callable[[], None] | None = None,
        witnesses: Sequence[str] = (),
        quorum: int = 0,
    ) -> None:
        self._engine = engine
        self._flush = flush
        # Checkpoints are read with the cosignatures of these witnesses appended; with a quorum, the one presented
        # is the latest (or smallest covering) checkpoint that has it, when there is one (docs/disclosure-log.md).
        self._witnesses = tuple(witnesses)
        self._quorum = quorum

    def _connect(self) -> Connection:
        if self._flush is not None:
            self._flush()
        return self._engine.connect()

    def _nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        if not ids:
            return {}
        with self._connect() as conn:
            rows = conn.execute(
                # OR of primary-key equalities: both engines answer it with one index probe per node (SQLite does
                # not use the primary key for a row-value IN list, which made a proof a scan of the whole tree).
                sa.select(_nodes.c.level, _nodes.c.idx, _nodes.c.hash).where(
                    sa.or_(*(sa.and_(_nodes.c.level == level, _nodes.c.idx == idx) for level, idx in set(ids)))
                )
            )
            found = {(int(r.level), int(r.idx)): bytes.fromhex(r.hash) for r in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            raise AuditUnavailableError(f"the log's tree is missing node {missing[0]}; run `gateway log verify`")
        return found

    def _fetch(self, plan: Sequence[Sequence[NodeId]]) -> list[bytes]:
        nodes = self._nodes([i for ids in plan for i in ids])
        return [fold_right([nodes[i] for i in ids]) for ids in plan]

    def size(self) -> int:
        with self._connect() as conn:
            return int(conn.execute(sa.select(_head.c.size).where(_head.c.id == 1)).scalar_one())

    def root_at(self, size: int) -> bytes:
        ids = list(root_ids(size))
        nodes = self._nodes(ids)
        return fold_right([nodes[i] for i in ids])

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self._fetch(inclusion_plan(index, size))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return self._fetch(consistency_plan(first, second))

    def latest_checkpoint(self) -> tuple[int, str] | None:
        with self._connect() as conn:
            if self._quorum:
                witnessed = quorum_checkpoint(conn, self._quorum, self._witnesses)
                if witnessed is not None:
                    return witnessed
            row = conn.execute(
                sa.select(_checkpoints.c.size, _checkpoints.c.note).order_by(_checkpoints.c.size.desc()).limit(1)
            ).first()
            if row is None:
                return None
            return int(row.size), cosigned_note(conn, int(row.size), row.note, self._witnesses)

    def checkpoint_covering(self, index: int) -> tuple[int, str] | None:
        """The smallest stored checkpoint whose tree includes leaf ``index`` (with a quorum: the smallest such that
        has it, if any)."""
        with self._connect() as conn:
            if self._quorum:
                witnessed = quorum_checkpoint(conn, self._quorum, self._witnesses, above=index)
                if witnessed is not None:
                    return witnessed
            row = conn.execute(
                sa.select(_checkpoints.c.size, _checkpoints.c.note)
                .where(_checkpoints.c.size > index)
                .order_by(_checkpoints.c.size)
                .limit(1)
            ).first()
            if row is None:
                return None
            return int(row.size), cosigned_note(conn, int(row.size), row.note, self._witnesses)

    def entry(self, seq: int) -> tuple[str, str] | None:
        with self._connect() as conn:
            row = conn.execute(sa.select(_entries.c.body, _entries.c.leaf_hash).where(_entries.c.seq == seq)).first()
        return (row.body, row.leaf_hash) if row is not None else None

    def disclosure(self, disclosure_id: str) -> Any | None:
        with self._connect() as conn:
            return conn.execute(sa.select(_disclosures).where(_disclosures.c.id == disclosure_id)).first()

    def disclosures(self, query: DisclosureQuery) -> list[Any]:
        stmt = sa.select(_disclosures)
        if query.agreement:
            stmt = stmt.where(_disclosures.c.agreement_id == query.agreement)
        if query.principal:
            stmt = stmt.where(_disclosures.c.principal == query.principal)
        if query.purpose:
            stmt = stmt.where(_disclosures.c.purpose == query.purpose)
        if query.status:
            stmt = stmt.where(_disclosures.c.status == query.status)
        if query.since:
            stmt = stmt.where(_disclosures.c.started_at >= query.since)
        if query.until:
            stmt = stmt.where(_disclosures.c.started_at < query.until)
        if query.before_seq is not None:
            stmt = stmt.where(_disclosures.c.start_seq < query.before_seq)
        stmt = stmt.order_by(_disclosures.c.start_seq.desc()).limit(query.limit)
        try:
            with self._connect() as conn:
                return list(conn.execute(stmt))
        except SQLAlchemyError as exc:
            raise AuditUnavailableError("the gateway database is not reachable") from exc

    def iter_disclosures(self, query: DisclosureQuery, page: int = 1000) -> Iterator[Any]:
        before = query.before_seq
        while True:
            rows = self.disclosures(
                DisclosureQuery(
                    query.agreement,
                    query.principal,
                    query.purpose,
                    query.status,
                    query.since,
                    query.until,
                    before,
                    page,
                )
            )
            yield from rows
            if len(rows) < page:
                return
            before = rows[-1].start_seq

    def subject_disclosures(self, subject_hash: bytes) -> list[Any]:
        stmt = (
            sa.select(_disclosures)
            .select_from(_subjects.join(_disclosures, _disclosures.c.start_seq == _subjects.c.disclosure_seq))
            .where(_subjects.c.subject_hash == subject_hash, _released())
            .order_by(_disclosures.c.start_seq)
        )
        with self._connect() as conn:
            return list(conn.execute(stmt))

    def totals(self) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(
                    _disclosures.c.agreement_id,
                    sa.func.count().label("requests"),
                    sa.func.coalesce(sa.func.sum(_disclosures.c.rows), 0).label("rows"),
                    sa.func.max(_disclosures.c.started_at).label("last_use"),
                )
                .group_by(_disclosures.c.agreement_id)
                .order_by(_disclosures.c.agreement_id)
            ).all()
            subjects: dict[str, int] = dict(
                conn.execute(
                    sa.select(_disclosures.c.agreement_id, sa.func.count(sa.distinct(_subjects.c.subject_hash)))
                    .select_from(_subjects.join(_disclosures, _disclosures.c.start_seq == _subjects.c.disclosure_seq))
                    .where(_released())
                    .group_by(_disclosures.c.agreement_id)
                ).all()
            )
        return [
            {
                "agreement": r.agreement_id,
                "requests": int(r.requests),
                "rows": int(r.rows),
                "subjects": int(subjects.get(r.agreement_id, 0)),
                "last_use": _iso(r.last_use),
            }
            for r in rows
        ]

    def receipt(self, row: Any, checkpoint: tuple[int, str]) -> dict[str, Any]:
        size, note = checkpoint
        entries = []
        for seq in (row.start_seq, row.finish_seq):
            if seq is None or seq >= size:
                continue
            found = self.entry(seq)
            if found is None:
                raise AuditUnavailableError(f"log entry {seq} is missing; run `gateway log verify`")
            body, _leaf = found
            entries.append(
                {"index": seq, "entry": body, "inclusion_proof": [_b64(h) for h in self.inclusion_proof(seq, size)]}
            )
        return {
            "format": "dx-gateway-receipt-v1",
            "disclosure_id": row.id,
            "tree_size": size,
            "checkpoint": note,
            "entries": entries,
        }


def build_receipt(log: DisclosureLog, reader: LogReader, row: Any) -> dict[str, Any] | None:
    """The receipt of one disclosure (GET /v1/disclosures/{id}/receipt and the dashboard), signing a checkpoint
    first if none covers its entries yet; None when still none does (a log without a signing key)."""
    needed = row.finish_seq if row.finish_seq is not None else row.start_seq
    checkpoint = reader.checkpoint_covering(needed)
    if checkpoint is None:
        log.checkpoint()
        checkpoint = reader.checkpoint_covering(needed)
    return reader.receipt(row, checkpoint) if checkpoint is not None else None
