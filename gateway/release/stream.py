"""Streamed releases (extracts): prepare → write-ahead → collect → first group → body → finish, short named stages.

``collect`` reads the whole scoped result, transformed and egress-scanned, into the keyed release order
(:mod:`gateway.release.order`) before the response starts: position carries no information, and an egress finding
anywhere blocks the extract with nothing sent. A group leaves only after its subjects were made durable in the
subject index: an accounting of disclosures never misses a child whose data was sent, even if the process dies
right after. The final entry records exactly what was sent.
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
from gateway.audit.subjects import LogKeys, release_order
from gateway.controls.quotas import watch_volume
from gateway.errors import EgressBlockedError, GatewayError
from gateway.release.logged import plan_for_log
from gateway.release.order import KeyedOrder
from gateway.release.prepare import Prepared, Row, prepare
from gateway.release.terms import AgreementTerms, Requester, open_session
from gateway.services import Services
from gateway.telemetry import tracing
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
        self.order = KeyedOrder(release_order(agreement.id), limit=prepared.plan.limit)
        self.groups: Iterator[tuple[list[bytes], list[Row]]] = iter(())
        self.first_rows = 0
        fmt = prepared.plan.format
        self.writer = (
            NdjsonWriter(prepared.compiled.columns) if fmt == "ndjson" else CsvWriter(prepared.compiled.columns)
        )

    def head(self) -> bytes:
        return self.writer.header() if isinstance(self.writer, CsvWriter) else b""

    def transform(self, batch: list[Row]) -> list[Row]:
        try:
            return self.prepared.compiled.rows(batch)
        except EgressBlocked as exc:
            raise EgressBlockedError(
                f"{exc}; under agreement {self.agreement.id!r} (egress.on_finding: block) nothing more is released. "
                "Exempt the column in egress.exempt if it is released on purpose, or redact it",
                headers={"X-Disclosure-Id": self.session.disclosure_id},
            ) from None

    def collect(self, batches: Iterator[list[Row]]) -> None:
        """Read the whole scoped result, transformed and egress-scanned, into the keyed release order. Before the
        response starts: an egress block anywhere in the extract is a clean 409 with nothing sent."""
        order, hashes = self.order, self.keys.subjects
        for batch in batches:
            released = self.transform(batch)
            order.add(hashes([r[0] for r in batch]), released)
        self.groups = order.groups(GROUP_ROWS)

    def first(self, batches: Iterator[list[Row]]) -> bytes | None:
        """Collect, then render and index the first group before the response starts."""
        with tracing.span("release.transform", {"dxg.operation": self.operation}):
            self.collect(batches)  # fetch, transform, egress scan, into the keyed release order
        item = self.produce()
        if item is None:
            return None
        self.first_rows, chunk, subjects = item
        self.session.index(subjects, ordered=True)
        return chunk

    def produce(self) -> tuple[int, bytes, list[bytes]] | None:
        """The next GROUP_ROWS rows in release order, rendered in a worker thread (one subject-index commit, one
        fsync, per group); the caller makes the subjects durable, then sends."""
        group = next(self.groups, None)
        if group is None:
            return None
        subjects, rows = group
        return len(rows), self.writer.batch(rows), subjects

    def close(self, batches: Iterator[list[Row]]) -> None:
        """Close the registry cursor and drop the spilled runs (always, whatever happened)."""
        try:
            close: Callable[[], object] | None = getattr(batches, "close", None)  # generators and cursors
            if close is not None:
                close()
        finally:
            self.order.close()

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
                ahead = asyncio.ensure_future(anyio.to_thread.run_sync(self.produce))
                # shield: a cancelled response (a disconnect) must not cancel the task while its thread still reads
                # `batches`; the finally block waits for it instead.
                while (item := await asyncio.shield(ahead)) is not None:
                    count, chunk, subjects = item
                    ahead = asyncio.ensure_future(anyio.to_thread.run_sync(self.produce))
                    await self.session.index_async(subjects, ordered=True)
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
                await _settle(ahead, self, batches)
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


async def _settle(ahead: asyncio.Future[Any] | None, streamer: _Streamer, batches: Iterator[list[Row]]) -> None:
    """Wait for a worker thread still rendering, then close the cursor and the spilled runs (always)."""
    if ahead is not None:
        await asyncio.wait([ahead])
        if not ahead.cancelled():
            ahead.exception()  # retrieved, so asyncio does not report it as never awaited
    await anyio.to_thread.run_sync(streamer.close, batches)


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
            await _settle(None, streamer, batches)
            await session.fail_async(exc, details=prepared.details())
        raise
    return Release(session.disclosure_id, MEDIA_TYPES[prepared.plan.format], stream=streamer.body(batches, first))
