"""Releasing rows: write-ahead log entry, pushed-down query, compiled transforms, streamed body, final entry.

Every route that sends registry rows goes through ``release``; it is the one place that enforces "logged before any
byte leaves" and "finalized with exactly what was sent". Single-record routes (records, verify) use its ``single``
mode, which buffers the at most one row before anything is sent, so a lookup that finds nothing can still answer 404.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from policies import Agreement, ColumnClass, Filter, ReleasePlan
from transforms import CompiledPlan, CsvWriter, NdjsonWriter, compile_plan

from ..auth import Principal
from ..disclosure_log import DisclosureStart
from ..errors import GatewayError, NotFoundError, NotImplementedByGatewayError, RegistryUnavailableError
from ..keysource import AgreementKeySource
from ..logconfig import get_logger
from ..services import Services
from .common import new_id, request_id, set_state

__all__ = ["MEDIA_TYPES", "NOT_FOUND_DETAIL", "DuplicateSubjectError", "SingleRender", "plan_for_log", "release"]

_log = get_logger("gateway.release")
MEDIA_TYPES = {"ndjson": "application/x-ndjson; charset=utf-8", "csv": "text/csv; charset=utf-8"}
Row = tuple[Any, ...]
#: Single mode: given the compiled plan, a function from the one fetched row (None: no row) to the response body, or
#: None for "not found" (a 404 that says the same whether the subject does not exist or is outside the row scope).
SingleRender = Callable[[CompiledPlan], Callable[[Row | None], bytes | None]]
NOT_FOUND_DETAIL = (
    "no record under this agreement for that subject id (it does not exist, or the agreement does not cover it)"
)


class DuplicateSubjectError(RegistryUnavailableError):
    code = "registry-duplicate-subject"


def _logged_condition(plan: ReleasePlan, flt: Filter, filter_key: bytes) -> dict[str, object]:
    shown = flt.describe()
    if plan.dataset.columns[flt.column].cls is ColumnClass.DIRECT_IDENTIFIER:
        values = flt.value if isinstance(flt.value, tuple) else (flt.value,)
        hashed = [hmac.new(filter_key, str(v).encode(), hashlib.sha256).hexdigest()[:32] for v in values]
        shown = {**shown, "value": {"hmac": hashed if isinstance(flt.value, tuple) else hashed[0]}}
    return shown


def plan_for_log(plan: ReleasePlan, filter_key: bytes, claims: Sequence[Filter] = ()) -> dict[str, Any]:
    """The plan as the log records it: filter values on direct identifiers are replaced by keyed hashes, so the log
    can show that two requests asked for the same person without holding the identifier itself. ``claims`` (verify)
    are conditions the gateway checks on the fetched row instead of pushing them down; they are logged the same way."""
    described = plan.describe()
    described["filters"] = [_logged_condition(plan, flt, filter_key) for flt in plan.filters]
    if claims:
        described["claims"] = [_logged_condition(plan, flt, filter_key) for flt in claims]
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
    single: SingleRender | None = None,
    claims: Sequence[Filter] = (),
) -> Response:
    """Stream the rows of ``plan``. ``render_factory`` returns (head, batch renderer, tail) for custom bodies.

    ``single`` releases at most one record as one buffered body: every row of the plan is fetched before anything is
    sent (give the plan ``limit=2``); two rows mean the registry holds duplicates for one subject key (502, nothing
    released); no row, or a body of None, is a 404 whose entry is still finalized ``completed`` with 0 rows, so
    compliance sees lookups that found nothing. ``claims`` are only recorded in the log (see ``plan_for_log``).
    """
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
        plan=plan_for_log(plan, filter_key, claims),
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
        if single is None:
            return batches, next(batches, None)
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
            close_batches = getattr(batches, "close", None)
            if close_batches is not None:
                close_batches()
        return iter(()), rows

    single_body: bytes | None = None
    try:
        batches, first = await anyio.to_thread.run_sync(open_stream)
        if single is not None:
            # Rendered before the response starts: the body depends on nothing but the row (or its absence).
            single_body = await anyio.to_thread.run_sync(single(compiled), first[0] if first else None)
    except Exception as exc:
        code = exc.code if isinstance(exc, GatewayError) else "internal-error"
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                lambda: log.finish(disclosure_id, status="failed", rows=0, nbytes=0, sha256=None, error=code)
            )
        raise
    headers = {"X-Disclosure-Id": disclosure_id, "Cache-Control": "no-store"}
    if single is not None:
        if single_body is None:
            # The query was made, so the entry stays: completed, 0 rows, 0 bytes released.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(
                    lambda: log.finish(
                        disclosure_id, status="completed", rows=0, nbytes=0, sha256=hashlib.sha256().hexdigest()
                    )
                )
            set_state(request, rows=0, bytes=0, disclosure_status="completed")
            raise NotFoundError(NOT_FOUND_DETAIL, headers=headers)
        body = single_body
        first = first or []  # no row but a body (verify: no match): nothing to index, the body still leaves

        def render(_batch: list[Row]) -> bytes:
            return body

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
        headers=headers,
    )
