"""Small, buffered disclosures outside the row pipeline: previews for approvers, re-identification answers,
aggregate tables.

Same session as every release: the write-ahead entry is durable before the registry is read, the subject index is
written before the body can leave, and the entry is finished with the rows, bytes and SHA-256 of exactly what is
sent (``failed`` if anything goes wrong in between). The body is produced in full first: these answers are a
handful of rows or one table, and a complete body can be hashed and logged before the first byte is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from gateway.audit.session import DisclosureSession, FinishStatus
from gateway.audit.subjects import LogKeys
from gateway.release.stream import Release
from gateway.release.terms import AgreementTerms, Requester, open_session
from gateway.services import Services

__all__ = ["Produced", "buffered_disclosure", "stream_whole"]


@dataclass(frozen=True, slots=True)
class Produced:
    """What a buffered disclosure made: the body, the rows it counts as released, the subject keys it released,
    and the facts its final entry adds (never personal data)."""

    body: bytes
    rows: int
    subjects: Sequence[object] = ()
    details: Mapping[str, Any] | None = None


async def _produce(
    found: Services, session: DisclosureSession, produce: Callable[[DisclosureSession], Produced]
) -> Produced:
    keys = LogKeys.of(found.keyring)

    def run() -> Produced:
        made = produce(session)
        session.index(keys.subjects(list(made.subjects)))
        return made

    try:
        return await anyio.to_thread.run_sync(run)
    except Exception as exc:
        await session.fail_async(exc)
        raise


async def buffered_disclosure(
    found: Services,
    requester: Requester,
    terms: AgreementTerms,
    *,
    operation: str,
    plan: Mapping[str, Any],
    produce: Callable[[DisclosureSession], Produced],
    media_type: str = "application/json",
    finish_on_send: bool = False,
) -> Release:
    """Log, run ``produce`` in a worker thread, index its subjects, finish; return the release to send.

    ``finish_on_send``: the final entry is written when the body has been handed to the server (``aborted`` with
    nothing sent if the client went away first), as for aggregate tables; otherwise before the body is returned."""
    session = open_session(found, requester, terms, operation=operation, plan=plan)
    await session.start()
    requester.note(disclosure_id=session.disclosure_id)
    made = await _produce(found, session, produce)
    if finish_on_send:
        return Release(session.disclosure_id, media_type, stream=stream_whole(session, requester, made))
    await session.finish_async(
        FinishStatus.COMPLETED,
        rows=made.rows,
        nbytes=len(made.body),
        sha256=hashlib.sha256(made.body).hexdigest(),
        details=made.details,
    )
    requester.note(rows=made.rows, bytes=len(made.body), disclosure_status="completed")
    return Release(session.disclosure_id, media_type, body=made.body)


async def stream_whole(session: DisclosureSession, requester: Requester, made: Produced) -> AsyncIterator[bytes]:
    """Send one whole body and finish the session with what was sent."""
    status = FinishStatus.ABORTED
    try:
        yield made.body
        status = FinishStatus.COMPLETED
    finally:
        sent = made.body if status is FinishStatus.COMPLETED else b""
        await session.finish_async(
            status,
            rows=made.rows if sent else 0,
            nbytes=len(sent),
            sha256=hashlib.sha256(sent).hexdigest(),
            details=made.details,
        )
        requester.note(rows=made.rows, bytes=len(sent), disclosure_status=status.value)
