"""Attribution in the disclosure log: the ``attribution.completed`` event, the subject-index lookup of many
subjects at once, the signed attribution statement and its offline verification, and the list the dashboard shows.

A statement is self-contained like a receipt: one signed checkpoint, the attribution event and the ``started`` and
``finished`` entries of every disclosure it names, each with its inclusion proof. A third party with only the log's
public key checks that the gateway logged this attribution (who asked, the file's SHA-256, the result) and that the
named disclosures are the gateway's own records of what it released to whom.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.audit.reader import LogReader
from gateway.audit.receipts import open_proven_entry
from gateway.db import DisclosureRow, LogEntryRow, SubjectIndexRow
from tlog import (
    Checkpoint,
    TlogError,
    Verifier,
    open_checkpoint,
)
from transforms.attribution import DisclosureInfo

__all__ = [
    "EVENT_TYPE",
    "STATEMENT_FORMAT",
    "StatementReport",
    "attribution_events",
    "build_statement",
    "released_by",
    "verify_statement",
]

EVENT_TYPE = "attribution.completed"
STATEMENT_FORMAT = "dx-gateway-attribution-v1"

_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
_subjects = SubjectIndexRow.__table__  # type: ignore[attr-defined]
#: subject hashes per IN query (well under SQLite's and PostgreSQL's bound-parameter limits)
_CHUNK = 500


def _fields(plan_text: str | None) -> dict[str, str]:
    try:
        plan = json.loads(plan_text or "{}")
        return {str(f["name"]): str(f.get("op", "keep")) for f in plan.get("fields", [])}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def released_by(engine: Engine, subject_hashes: Iterable[bytes]) -> dict[bytes, list[DisclosureInfo]]:
    """Subject-index hash -> the disclosures that may have released it (finished with rows, or never finished),
    as the accounting of disclosures counts them."""
    wanted = sorted(set(subject_hashes))
    out: dict[bytes, list[DisclosureInfo]] = {}
    infos: dict[str, DisclosureInfo] = {}
    released = sa.or_(_disclosures.c.status == "started", _disclosures.c.rows > 0)
    with engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = conn.execute(
                sa.select(_subjects.c.subject_hash, _disclosures)
                .select_from(_subjects.join(_disclosures, _disclosures.c.start_seq == _subjects.c.disclosure_seq))
                .where(_subjects.c.subject_hash.in_(chunk), released)
            )
            for row in rows:
                info = infos.get(row.id)
                if info is None:
                    info = infos[row.id] = DisclosureInfo(
                        row.id,
                        row.agreement_id,
                        int(row.agreement_version),
                        row.principal,
                        row.approved_by,
                        _iso(row.started_at),
                        row.status,
                        row.rows,
                        _fields(row.plan),
                    )
                out.setdefault(bytes(row.subject_hash), []).append(info)
    return out


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def build_statement(reader: LogReader, event_index: int, disclosure_ids: Sequence[str]) -> dict[str, Any] | None:
    """The signed statement of the attribution logged at ``event_index``: the latest checkpoint (which must cover
    the event: sign one first), the event and both entries of each named disclosure, with inclusion proofs."""
    checkpoint = reader.latest_checkpoint()
    if checkpoint is None or checkpoint[0] <= event_index:
        return None
    size, note = checkpoint
    seqs = [event_index]
    for disclosure_id in disclosure_ids:
        row = reader.disclosure(disclosure_id)
        if row is not None:
            seqs.extend(s for s in (row.start_seq, row.finish_seq) if s is not None and s < size)
    items = []
    for seq in sorted(set(seqs)):
        found = reader.entry(seq)
        if found is None:
            continue
        body, _leaf = found
        items.append(
            {"index": seq, "entry": body, "inclusion_proof": [_b64(h) for h in reader.inclusion_proof(seq, size)]}
        )
    return {
        "format": STATEMENT_FORMAT,
        "event_index": event_index,
        "tree_size": size,
        "checkpoint": note,
        "entries": items,
    }


@dataclass
class StatementReport:
    problems: list[str] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    event: dict[str, Any] | None = None
    disclosures: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_statement(statement: Any, verifier: Verifier, *, content: bytes | None = None) -> StatementReport:
    """Check an attribution statement offline: the checkpoint's signature, every entry's inclusion in it, that the
    event is an attribution, and that every disclosure it names is present with its started and finished entries.
    With ``content`` (the leaked file) its SHA-256 must be the one the event records."""
    report = StatementReport()
    if not isinstance(statement, dict) or statement.get("format") != STATEMENT_FORMAT:
        report.problems.append(f"not an attribution statement (format {STATEMENT_FORMAT})")
        return report
    note = statement.get("checkpoint")
    if not isinstance(note, str):
        report.problems.append("the statement has no checkpoint")
        return report
    try:
        checkpoint = open_checkpoint(note, note.split("\n", 1)[0], verifier)
    except TlogError as exc:
        report.problems.append(f"checkpoint signature or format invalid: {exc}")
        return report
    report.checkpoint = checkpoint
    if statement.get("tree_size") != checkpoint.size:
        report.problems.append("tree_size does not match the signed checkpoint")
    items = statement.get("entries")
    if not isinstance(items, list):
        report.problems.append("the statement has no entries")
        return report
    entries: dict[int, dict[str, Any]] = {}
    for position, item in enumerate(items):
        proven = open_proven_entry(item, checkpoint)
        if isinstance(proven, str):
            report.problems.append(f"entry {position}: {proven}")
        else:
            entries[int(proven["index"])] = proven
    event = entries.get(statement.get("event_index", -1))
    if event is None or event.get("type") != EVENT_TYPE:
        report.problems.append("the statement's attribution event is missing or not proven")
        return report
    report.event = event
    _check_named(report, event, entries.values())
    if content is not None and event.get("file", {}).get("sha256") != hashlib.sha256(content).hexdigest():
        report.problems.append("the file's SHA-256 differs from the one the attribution recorded")
    return report


def _check_named(report: StatementReport, event: Mapping[str, Any], entries: Iterable[Mapping[str, Any]]) -> None:
    by_id: dict[str, dict[str, Mapping[str, Any]]] = {}
    for entry in entries:
        kind, disclosure_id = entry.get("type"), entry.get("disclosure_id")
        if isinstance(disclosure_id, str) and kind in ("disclosure.started", "disclosure.finished"):
            by_id.setdefault(disclosure_id, {})[str(kind)] = entry
    named = event.get("result", {}).get("disclosures", [])
    for disclosure_id in named if isinstance(named, list) else []:
        pair = by_id.get(disclosure_id, {})
        start, end = pair.get("disclosure.started"), pair.get("disclosure.finished")
        if start is None or end is None:
            report.problems.append(f"disclosure {disclosure_id}: its started and finished entries are not both proven")
            continue
        report.disclosures[disclosure_id] = {
            "recipient": start.get("recipient"),
            "agreement": start.get("agreement"),
            "approved_by": start.get("approved_by"),
            "time": start.get("time"),
            "status": end.get("status"),
            "rows": end.get("rows"),
            "subjects": end.get("subjects"),
        }


def attribution_events(engine: Engine, *, limit: int = 100) -> list[dict[str, Any]]:
    """The latest attribution events, newest first (the dashboard's list)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(_entries.c.seq, _entries.c.body)
            .where(_entries.c.kind == EVENT_TYPE)
            .order_by(_entries.c.seq.desc())
            .limit(limit)
        ).all()
    return [json.loads(r.body) for r in rows]
