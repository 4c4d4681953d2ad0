"""Small, buffered disclosures outside the streaming release path: previews for approvers, re-identification answers.

Same discipline as ``release``: the write-ahead entry is durable before the registry is read, the subject index is
written before the body can leave, and the entry is finalized with the rows, bytes and SHA-256 of exactly what is
sent (``failed`` if anything goes wrong in between). The body is produced in full first: these answers are a handful
of rows, and a complete body can be hashed and logged before the first byte is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request

from gateway.audit.log import DisclosureStart
from gateway.auth import Principal
from gateway.errors import GatewayError
from gateway.services import Services
from gateway.web.routes.common import new_id, request_id, set_state
from gateway.web.routes.compliance import subject_hash
from policies import Agreement

__all__ = ["Disclosed", "Subject", "buffered_disclosure"]


@dataclass(frozen=True, slots=True)
class Subject:
    """What a disclosure runs under: the agreement version, its approval, legal basis and purpose."""

    agreement_id: str
    agreement_version: int
    agreement_digest: str
    approved_by: str
    legal_basis: str
    purpose: str

    @classmethod
    def of(cls, agreement: Agreement, *, approved_by: str | None = None, purpose: str | None = None) -> Subject:
        """``agreement``'s; an agreement review (preview) names the version's approver and its own purpose."""
        return cls(
            agreement.id,
            agreement.version,
            agreement.digest,
            agreement.approved_by if approved_by is None else approved_by,
            agreement.legal_basis,
            agreement.purpose if purpose is None else purpose,
        )


def disclosure_start(
    request: Request,
    found: Services,
    principal: Principal,
    subject: Subject,
    disclosure_id: str,
    *,
    operation: str,
    plan: Mapping[str, Any],
) -> DisclosureStart:
    """The write-ahead entry of a disclosure: who, under which agreement version and approval, why, what."""
    return DisclosureStart(
        disclosure_id=disclosure_id,
        request_id=request_id(request),
        principal=principal.name,
        agreement_id=subject.agreement_id,
        agreement_version=subject.agreement_version,
        agreement_digest=subject.agreement_digest,
        approved_by=subject.approved_by,
        legal_basis=subject.legal_basis,
        purpose=subject.purpose,
        operation=operation,
        plan=plan,
        started_at=found.clock(),
    )


@dataclass(frozen=True, slots=True)
class Disclosed:
    disclosure_id: str
    body: bytes


async def buffered_disclosure(
    request: Request,
    found: Services,
    principal: Principal,
    subject: Subject,
    *,
    operation: str,
    plan: Mapping[str, Any],
    produce: Callable[[], tuple[bytes, int, Sequence[object]]],
) -> Disclosed:
    """Log, run ``produce`` (returns body, rows, subject keys), index subjects, finalize; return the body to send."""
    disclosure_id = new_id()
    start = disclosure_start(request, found, principal, subject, disclosure_id, operation=operation, plan=dict(plan))
    log = found.log
    start_seq = await anyio.to_thread.run_sync(log.start, start)
    set_state(request, disclosure_id=disclosure_id)

    def run() -> tuple[bytes, int]:
        body, rows, subjects = produce()
        log.index_subjects(start_seq, [subject_hash(found, str(s)) for s in subjects])
        return body, rows

    try:
        body, rows = await anyio.to_thread.run_sync(run)
    except Exception as exc:
        code = exc.code if isinstance(exc, GatewayError) else type(exc).__name__[:64]
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                lambda: log.finish(disclosure_id, status="failed", rows=0, nbytes=0, sha256=None, error=code)
            )
        raise
    digest = hashlib.sha256(body).hexdigest()
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(
            lambda: log.finish(disclosure_id, status="completed", rows=rows, nbytes=len(body), sha256=digest)
        )
    set_state(request, rows=rows, bytes=len(body), disclosure_status="completed")
    return Disclosed(disclosure_id, body)
