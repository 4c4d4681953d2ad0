"""Single-record releases (records, claim checks): one buffered body, decided before anything is sent.

Every row of the plan is fetched before the response starts (the plan has ``limit=2``): two rows mean the registry
holds duplicates for one subject key (502, nothing released); no row, or a body of None, is a 404 whose entry is
still finished ``completed`` with 0 rows, so compliance sees lookups that found nothing. The subject asked for is
indexed with the write-ahead entry, in its one durable commit; the final entry is then queued without waiting (the
accounting of disclosures skips final entries that released nothing, so a lookup that found nobody does not list
the id asked for).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence

import anyio
import anyio.to_thread

from gateway.audit.session import EMPTY_SHA256, DisclosureSession, FinishStatus
from gateway.audit.subjects import LogKeys
from gateway.errors import EgressBlockedError, NotFoundError
from gateway.release.logged import plan_for_log
from gateway.release.prepare import DuplicateSubjectError, Prepared, Row, prepare
from gateway.release.stream import Release
from gateway.release.terms import AgreementTerms, Requester, open_session
from gateway.services import Services
from policies import Agreement, Filter, ReleasePlan
from transforms import CompiledPlan
from transforms.egress import EgressBlocked

__all__ = ["NOT_FOUND_DETAIL", "SingleRender", "release_one"]

#: Given the compiled plan, a function from the one fetched row (None: no row) to the response body, or None for
#: "not found" (a 404 that says the same whether the subject does not exist or is outside the row scope).
SingleRender = Callable[[CompiledPlan], Callable[[Row | None], bytes | None]]
NOT_FOUND_DETAIL = (
    "no record under this agreement for that subject id (it does not exist, or the agreement does not cover it)"
)


def _at_most_one(batches: Iterator[list[Row]]) -> list[Row]:
    rows: list[Row] = []
    try:
        for batch in batches:
            rows.extend(batch)
            if len(rows) > 1:
                raise DuplicateSubjectError(
                    "the registry holds more than one record for this subject; nothing was released (tell the "
                    "registry operator: a subject key must identify one record)"
                )
    finally:
        close: Callable[[], object] | None = getattr(batches, "close", None)  # generators and cursors
        if close is not None:
            close()
    return rows


def _read_one(
    found: Services,
    prepared: Prepared,
    render: Callable[[Row | None], bytes | None],
    agreement_id: str,
    disclosure_id: str,
) -> tuple[int, bytes | None]:
    """Read and render in one worker-thread hop, before the response starts."""
    rows = _at_most_one(prepared.batches(found))
    try:
        return len(rows), render(rows[0] if rows else None)
    except EgressBlocked as exc:
        raise EgressBlockedError(
            f"{exc}; nothing was released under agreement {agreement_id!r}",
            headers={"X-Disclosure-Id": disclosure_id},
        ) from None


def _finish_found(session: DisclosureSession, prepared: Prepared, rows: int, body: bytes) -> None:
    # Queued as the body is handed to the server (what "completed" records for every release): the subject is
    # indexed and the write-ahead entry durable already.
    session.finish(
        FinishStatus.COMPLETED,
        rows=rows,
        nbytes=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        details=prepared.details(),
        wait=False,
    )


async def release_one(
    found: Services,
    requester: Requester,
    agreement: Agreement,
    plan: ReleasePlan,
    *,
    operation: str,
    render: SingleRender,
    subject: object,
    media_type: str,
    claims: Sequence[Filter] = (),
) -> Release:
    """Release at most the one record of ``subject``: prepare → write-ahead with the subject → read → finish."""
    prepared = await prepare(found, agreement, plan, single=True)
    keys = LogKeys.of(found.keyring)
    logged = plan_for_log(prepared.plan, keys, claims)
    session = open_session(found, requester, AgreementTerms.of(agreement), operation=operation, plan=logged)
    await session.start((keys.subject(subject),))
    requester.note(disclosure_id=session.disclosure_id)
    prepared.mark_for(found, session.disclosure_id)
    renderer = render(prepared.compiled)
    try:
        rows, body = await anyio.to_thread.run_sync(
            _read_one, found, prepared, renderer, agreement.id, session.disclosure_id
        )
    except Exception as exc:
        await session.fail_async(exc, details=prepared.details())
        raise
    if body is None:
        # The query was made, so the entry stays: completed, 0 rows, 0 bytes released.
        session.finish(FinishStatus.COMPLETED, sha256=EMPTY_SHA256, wait=False)
        requester.note(rows=0, bytes=0, disclosure_status="completed")
        release = Release(session.disclosure_id, media_type)
        raise NotFoundError(NOT_FOUND_DETAIL, headers=release.headers)
    _finish_found(session, prepared, rows, body)
    requester.note(rows=rows, bytes=len(body), disclosure_status="completed")
    return Release(session.disclosure_id, media_type, body=body)
