"""Streamed releases (extracts): write-ahead → first batch → body → finish, each a short named stage.

A batch leaves only after it was rendered (transformed, egress-scanned) and its subjects were made durable in the
subject index: an accounting of disclosures never misses a child whose data was sent, even if the process dies right
after, and a batch the egress scan blocks indexes no one. The final entry records exactly what was sent.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread

from gateway.applog import get_logger
from gateway.audit.session import DisclosureSession, FinishStatus, error_code
from gateway.audit.subjects import LogKeys
from gateway.controls.quotas import watch_volume
from gateway.errors import EgressBlockedError, GatewayError
from gateway.release.logged import plan_for_log
from gateway.release.prepare import Prepared, Row, prepare
from gateway.release.terms import AgreementTerms, Requester, open_session
from gateway.services import Services
from policies import Agreement, ReleasePlan
from transforms import CsvWriter, NdjsonWriter
from transforms.egress import EgressBlocked

__all__ = ["GROUP_ROWS", "MEDIA_TYPES", "Release", "release_rows"]

_log = get_logger("gateway.release")
#: rows rendered and indexed together per streaming step (a few MB of output at most)
GROUP_ROWS = 16_000
MEDIA_TYPES = {"ndjson": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Release:
    """A disclosure ready to send: a whole ``body`` (single records, previews, aggregates) or a ``stream`` whose
    end writes the final entry. The web layer only wraps it in a response."""

    disclosure_id: str
    media_type: str
    body: bytes | None = None
    stream: AsyncIterator[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Disclosure-Id": self.disclosure_id, "Cache-Control": "no-store"}


@dataclass
class _Tally:
    rows: int = 0
    nbytes: int = 0

    def __post_init__(self) -> None:
        self.digest = hashlib.sha256()

    def add(self, chunk: bytes, rows: int) -> bytes:
        self.digest.update(chunk)
        self.rows += rows
        self.nbytes += len(chunk)
        return chunk


class _Streamer:
    """The stages after the write-ahead entry, sharing one session, renderer and subject hasher."""

    def __init__(
        self,
        found: Services,
        agreement: Agreement,
        prepared: Prepared,
        session: DisclosureSession,
        requester: Requester,
        operation: str,
    ) -> None:
        self.found, self.agreement, self.prepared = found, agreement, prepared
        self.session, self.requester, self.operation = session, requester, operation
        self.keys = LogKeys.of(found.keyring)
        self.first_rows = 0
        fmt = prepared.plan.format
        self.writer = (
            NdjsonWriter(prepared.compiled.columns) if fmt == "ndjson" else CsvWriter(prepared.compiled.columns)
        )

    def head(self) -> bytes:
        return self.writer.header() if isinstance(self.writer, CsvWriter) else b""

    def render(self, batch: list[Row]) -> bytes:
        try:
            return self.writer.batch(self.prepared.compiled.rows(batch))
        except EgressBlocked as exc:
            raise EgressBlockedError(
                f"{exc}; under agreement {self.agreement.id!r} (egress.on_finding: block) nothing more is released. "
                "Exempt the column in egress.exempt if it is released on purpose, or redact it",
                headers={"X-Disclosure-Id": self.session.disclosure_id},
            ) from None

    def subjects(self, batch: list[Row]) -> list[bytes]:
        return self.keys.subjects([r[0] for r in batch])

    def first(self, batches: Iterator[list[Row]]) -> bytes | None:
        """The first batch, rendered and indexed before the response starts: an egress block on it is a clean 409."""
        batch = next(batches, None)
        if batch is None:
            return None
        chunk = self.render(batch)
        self.session.index(self.subjects(batch))
        self.first_rows = len(batch)
        return chunk

    def produce(self, batches: Iterator[list[Row]]) -> tuple[int, bytes, list[bytes]] | None:
        """Several fetched batches per step (one subject-index commit, one fsync, per ~GROUP_ROWS rows), fetched
        and rendered in a worker thread; the caller makes the subjects durable, then sends."""
        group: list[list[Row]] = []
        count = 0
        while count < GROUP_ROWS and (batch := next(batches, None)) is not None:
            group.append(batch)
            count += len(batch)
        if not group:
            return None
        chunks = [self.render(batch) for batch in group]
        return count, b"".join(chunks), [h for batch in group for h in self.subjects(batch)]

    async def body(self, batches: Iterator[list[Row]], first: bytes | None) -> AsyncIterator[bytes]:
        tally = _Tally()
        status, error = FinishStatus.ABORTED, None
        ahead: asyncio.Future[tuple[int, bytes, list[bytes]] | None] | None = None
        try:
            if head := self.head():
                yield tally.add(head, 0)
            if first is not None:
                yield tally.add(first, self.first_rows)
                # Pipelined one group deep: while group n's subjects are committed (the log writer's fsync) and its
                # bytes are sent, group n+1 is fetched and rendered in a worker thread. A group leaves only after
                # its subjects are durable; a group rendered but never sent (a disconnect) is never indexed.
                ahead = asyncio.ensure_future(anyio.to_thread.run_sync(self.produce, batches))
                # shield: a cancelled response (a disconnect) must not cancel the task while its thread still reads
                # `batches`; the finally block waits for it instead.
                while (item := await asyncio.shield(ahead)) is not None:
                    count, chunk, subjects = item
                    ahead = asyncio.ensure_future(anyio.to_thread.run_sync(self.produce, batches))
                    await self.session.index_async(subjects)
                    yield tally.add(chunk, count)
                ahead = None
            status = FinishStatus.COMPLETED
        except Exception as exc:
            error = error_code(exc)
            if not isinstance(exc, GatewayError):
                _log.exception("stream_failed", disclosure_id=self.session.disclosure_id)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await _settle(ahead, batches)
                await self.finish(status, tally, error)

    async def finish(self, status: FinishStatus, tally: _Tally, error: str | None) -> None:
        await self.session.finish_async(
            status,
            rows=tally.rows,
            nbytes=tally.nbytes,
            sha256=tally.digest.hexdigest(),
            error=error,
            details=self.prepared.details(),
        )
        self.requester.note(rows=tally.rows, bytes=tally.nbytes, disclosure_status=status.value)
        found = self.found
        await watch_volume(
            found.database,
            found.log,
            self.agreement,
            disclosure_id=self.session.disclosure_id,
            operation=self.operation,
            rows=tally.rows,
        )


async def _settle(ahead: asyncio.Future[Any] | None, batches: Iterator[list[Row]]) -> None:
    """Wait for a worker thread still reading ``batches``, then close the registry cursor (always)."""
    if ahead is not None:
        await asyncio.wait([ahead])
        if not ahead.cancelled():
            ahead.exception()  # retrieved, so asyncio does not report it as never awaited
    close: Callable[[], object] | None = getattr(batches, "close", None)  # generators and cursors; lists have none
    if close is not None:
        await anyio.to_thread.run_sync(close)


async def release_rows(
    found: Services, requester: Requester, agreement: Agreement, plan: ReleasePlan, *, operation: str
) -> Release:
    """Stream the rows of ``plan``: prepare → write-ahead → first batch → body (finishes the session)."""
    prepared = await prepare(found, agreement, plan, single=False)
    logged = plan_for_log(prepared.plan, LogKeys.of(found.keyring))
    session = open_session(found, requester, AgreementTerms.of(agreement), operation=operation, plan=logged)
    await session.start()  # durable before the registry is queried and before any byte can leave
    requester.note(disclosure_id=session.disclosure_id)
    streamer = _Streamer(found, agreement, prepared, session, requester, operation)
    batches: Iterator[list[Row]] = iter(())
    try:
        batches = await anyio.to_thread.run_sync(prepared.batches, found)
        first = await anyio.to_thread.run_sync(streamer.first, batches)
    except Exception as exc:
        with anyio.CancelScope(shield=True):
            await _settle(None, batches)
            await session.fail_async(exc, details=prepared.details())
        raise
    return Release(session.disclosure_id, MEDIA_TYPES[prepared.plan.format], stream=streamer.body(batches, first))
