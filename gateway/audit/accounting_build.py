"""Build the accounting-proof document of one subject (``POST /v1/subjects/disclosures/proof``): the reads behind
:mod:`gateway.audit.accounting_proof`.

The commitment each membership proof must reach is read from the signed finished entry, not from the
``disclosures`` row; the set it is proven in is the subject index of that disclosure. When the two disagree (an index
row deleted, added or moved), no proof is made: :class:`ProjectionMismatchError` names the disclosure and its log
index (409), and ``gateway log verify`` names the rows.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.audit.accounting_proof import ACCOUNTING_PROOF_FORMAT, membership_proof
from gateway.audit.log import DisclosureLog
from gateway.audit.reader import LogReader
from gateway.audit.subjects import release_order
from gateway.db import SubjectIndexRow
from gateway.errors import AuditUnavailableError, GatewayError

__all__ = ["ProjectionMismatchError", "build_accounting_proof"]

_subjects = SubjectIndexRow.__table__  # type: ignore[attr-defined]


class ProjectionMismatchError(GatewayError):
    """409: a table disagrees with the signed entries, so no proof can be made (the database was edited)."""

    status = 409
    code = "log-projection-mismatch"
    title = "The log's tables disagree with its signed entries"


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


def _index_of(engine: Engine, seq: int) -> list[bytes]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(_subjects.c.subject_hash).where(_subjects.c.disclosure_seq == seq))
        return [bytes(r[0]) for r in rows]


def build_accounting_proof(log: DisclosureLog, reader: LogReader, engine: Engine, subject: bytes) -> dict[str, Any]:
    """The proof document for the subject-index hash ``subject`` over the disclosures the accounting lists."""
    rows = reader.subject_disclosures(subject)
    needed = max((r.finish_seq if r.finish_seq is not None else r.start_seq for r in rows), default=-1)
    checkpoint = reader.checkpoint_covering(max(needed, 0)) if rows else reader.latest_checkpoint()
    if checkpoint is None:
        log.checkpoint()
        checkpoint = reader.checkpoint_covering(max(needed, 0)) if rows else reader.latest_checkpoint()
    if checkpoint is None:
        raise AuditUnavailableError("no signed checkpoint covers these entries yet; try again in a few seconds")
    size, note = checkpoint
    items = []
    for row in rows:
        entries = []
        finished: dict[str, Any] | None = None
        agreement = ""
        for seq in (row.start_seq, row.finish_seq):
            if seq is None or seq >= size:
                continue
            found = reader.entry(seq)
            if found is None:
                raise AuditUnavailableError(f"log entry {seq} is missing; run `gateway log verify`")
            body = found[0]
            parsed = json.loads(body)
            if parsed.get("type") == "disclosure.finished":
                finished = parsed
            elif isinstance(parsed.get("agreement"), dict):
                agreement = str(parsed["agreement"].get("id"))  # the signed entry's, not the row's
            proof = [_b64(h) for h in reader.inclusion_proof(seq, size)]
            entries.append({"index": seq, "entry": body, "inclusion_proof": proof})
        membership = None
        commitment = finished.get("subjects") if finished is not None else None
        if isinstance(commitment, dict):
            proven = membership_proof(_index_of(engine, row.start_seq), subject, release_order(agreement))
            if proven is None or proven.count != commitment["count"] or proven.root.hex() != commitment["root"]:
                raise ProjectionMismatchError(
                    f"the subject index of disclosure {row.id} (log index {row.start_seq}) does not hash to the "
                    "subject set its signed finished entry commits to; run `gateway log verify`, which names the rows"
                )
            membership = proven.describe()
        items.append({"disclosure_id": row.id, "entries": entries, "membership": membership})
    return {
        "format": ACCOUNTING_PROOF_FORMAT,
        "subject_hash": subject.hex(),
        "tree_size": size,
        "checkpoint": note,
        "count": len(items),
        "disclosures": items,
    }
