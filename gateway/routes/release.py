"""Releasing rows: write-ahead log entry, pushed-down query, compiled transforms, streamed body, final entry.

Every route that sends registry rows goes through ``release``; it is the one place that enforces "logged before any
byte leaves" and "finalized with exactly what was sent".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from policies import Agreement, ColumnClass, ReleasePlan
from transforms import CompiledPlan, CsvWriter, NdjsonWriter, compile_plan

from ..auth import Principal
from ..disclosure_log import DisclosureStart
from ..errors import GatewayError, NotImplementedByGatewayError
from ..keysource import AgreementKeySource
from ..logconfig import get_logger
from ..services import Services
from .common import new_id, request_id, set_state

__all__ = ["MEDIA_TYPES", "plan_for_log", "release"]

_log = get_logger("gateway.release")
MEDIA_TYPES = {"ndjson": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}
Row = tuple[Any, ...]


def plan_for_log(plan: ReleasePlan, filter_key: bytes) -> dict[str, Any]:
    """The plan as the log records it: filter values on direct identifiers are replaced by keyed hashes, so the log
    can show that two requests asked for the same person without holding the identifier itself."""
    described = plan.describe()
    filters = []
    for flt, shown in zip(plan.filters, described["filters"], strict=True):
        column = plan.dataset.columns[flt.column]
        if column.cls is ColumnClass.DIRECT_IDENTIFIER:
            values = flt.value if isinstance(flt.value, tuple) else (flt.value,)
            hashed = [hmac.new(filter_key, str(v).encode(), hashlib.sha256).hexdigest()[:32] for v in values]
            shown = {**shown, "value": {"hmac": hashed if isinstance(flt.value, tuple) else hashed[0]}}
        filters.append(shown)
    described["filters"] = filters
    return described


def check_controls(agreement: Agreement) -> None:
    if agreement.k_anonymity is not None:
        # Fail closed: releasing without a control the approver relied on would break the agreement.
        raise NotImplementedByGatewayError(
            f"agreement {agreement.id!r} requires k-anonymity, which this gateway version does not enforce yet; "
            "nothing was released"
        )


async def release(
    request: Request,
    found: Services,
    principal: Principal,
    agreement: Agreement,
    plan: ReleasePlan,
    *,
    operation: str,
    render_factory: Callable[[CompiledPlan], tuple[bytes, Callable[[list[Row]], bytes], bytes]] | None = None,
    media_type: str | None = None,
) -> Response:
    """Stream the rows of ``plan``. ``render_factory`` returns (head, batch renderer, tail) for custom bodies."""
    check_controls(agreement)
    compiled = compile_plan(plan, AgreementKeySource(found.keyring, agreement.id))
    if compiled.unhandled_entities:
        # Fail closed: a redaction the agreement asks for but no detector here performs would leak those entities.
        raise NotImplementedByGatewayError(
            f"agreement {agreement.id!r} asks to redact {', '.join(compiled.unhandled_entities)}, which no "
            "configured detector handles; nothing was released"
        )
    render: Callable[[list[Row]], bytes]
    if render_factory is None:
        writer: NdjsonWriter | CsvWriter = (
            NdjsonWriter(compiled.columns) if plan.format == "ndjson" else CsvWriter(compiled.columns)
        )
        head = writer.header() if isinstance(writer, CsvWriter) else b""
        tail = b""

        def render(batch: list[Row]) -> bytes:
            return writer.batch(compiled.rows(batch))
    else:
        head, render, tail = render_factory(compiled)
    subject_key = found.keyring.derive("log:subject-index", "subjects").reveal()
    filter_key = found.keyring.derive("log:subject-index", "filter-values").reveal()
    disclosure_id = new_id()
    start = DisclosureStart(
        disclosure_id=disclosure_id,
        request_id=request_id(request),
        principal=principal.name,
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        agreement_digest=agreement.digest,
        approved_by=agreement.approved_by,
        legal_basis=agreement.legal_basis,
        purpose=agreement.purpose,
        operation=operation,
        plan=plan_for_log(plan, filter_key),
        started_at=found.clock(),
    )
    log = found.log
    # Write-ahead: durable before the registry is queried and before any byte can leave.
    start_seq = await anyio.to_thread.run_sync(log.start, start)
    set_state(request, disclosure_id=disclosure_id)
    batch_rows = found.batch_rows

    def subjects_of(batch: list[Row]) -> list[bytes]:
        return [hmac.new(subject_key, str(r[0]).encode(), hashlib.sha256).digest()[:16] for r in batch]

    def open_stream() -> tuple[Iterator[list[Row]], list[Row] | None]:
        batches = found.connector.stream(plan, batch_rows=batch_rows)
        return batches, next(batches, None)

    try:
        batches, first = await anyio.to_thread.run_sync(open_stream)
    except Exception as exc:
        code = exc.code if isinstance(exc, GatewayError) else "internal-error"
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                lambda: log.finish(disclosure_id, status="failed", rows=0, nbytes=0, sha256=None, error=code)
            )
        raise

    def prepare(batch: list[Row]) -> bytes:
        # The subject index is written before the batch can leave, so an accounting of disclosures never misses a
        # child whose data was sent, even if the process dies right after.
        log.index_subjects(start_seq, subjects_of(batch))
        return render(batch)

    def step() -> tuple[int, bytes] | None:
        batch = next(batches, None)
        if batch is None:
            return None
        return len(batch), prepare(batch)

    async def body_iter() -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        rows = nbytes = 0
        status, error = "aborted", None
        try:
            if head:
                digest.update(head)
                nbytes += len(head)
                yield head
            if first is not None:
                chunk = await anyio.to_thread.run_sync(prepare, first)
                digest.update(chunk)
                rows += len(first)
                nbytes += len(chunk)
                yield chunk
                while (item := await anyio.to_thread.run_sync(step)) is not None:
                    count, chunk = item
                    digest.update(chunk)
                    rows += count
                    nbytes += len(chunk)
                    yield chunk
            if tail:
                digest.update(tail)
                nbytes += len(tail)
                yield tail
            status = "completed"
        except GatewayError as exc:
            error = exc.code
            raise
        except Exception:
            error = "internal-error"
            _log.exception("stream_failed", disclosure_id=disclosure_id)
            raise
        finally:
            close = getattr(batches, "close", None)
            with anyio.CancelScope(shield=True):
                if close is not None:
                    await anyio.to_thread.run_sync(close)
                await anyio.to_thread.run_sync(
                    lambda: log.finish(
                        disclosure_id, status=status, rows=rows, nbytes=nbytes, sha256=digest.hexdigest(), error=error
                    )
                )
                set_state(request, rows=rows, bytes=nbytes, disclosure_status=status)

    return StreamingResponse(
        body_iter(),
        media_type=media_type or MEDIA_TYPES[plan.format],
        headers={"X-Disclosure-Id": disclosure_id, "Cache-Control": "no-store"},
    )
