"""Releasing rows: write-ahead log entry, pushed-down query, compiled transforms, streamed body, final entry.

Every route that sends registry rows goes through ``release``; it is the one place that enforces "logged before any
byte leaves" and "finalized with exactly what was sent". Single-record routes (records, verify) use its ``single``
mode, which buffers the at most one row before anything is sent, so a lookup that finds nothing can still answer 404.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.applog import get_logger
from gateway.auth import Principal
from gateway.controls.quotas import apply_quotas, watch_volume
from gateway.errors import (
    EgressBlockedError,
    GatewayError,
    NotFoundError,
    NotImplementedByGatewayError,
    RegistryUnavailableError,
    ValidationError,
)
from gateway.keysource import AgreementKeySource
from gateway.services import Services
from gateway.web.routes.buffered import Subject, disclosure_start
from gateway.web.routes.common import new_id, set_state
from policies import Agreement, ColumnClass, Filter, ReleasePlan
from transforms import CompiledPlan, CsvWriter, HmacSha256, NdjsonWriter, compile_plan
from transforms.egress import EgressBlocked
from transforms.redaction import DeferredNames
from transforms.risk import KAnonymityRelease

__all__ = ["MEDIA_TYPES", "NOT_FOUND_DETAIL", "DuplicateSubjectError", "SingleRender", "plan_for_log", "release"]

_log = get_logger("gateway.release")
#: rows rendered and indexed together per streaming step (a few MB of output at most)
GROUP_ROWS = 16_000
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


class KAnonymityRefusedError(ValidationError):
    code = "k-anonymity-suppression-exceeded"


def k_anonymity_for(found: Services, agreement: Agreement, plan: ReleasePlan) -> KAnonymityRelease | None:
    """The agreement's k-anonymity (and l-diversity) over the whole scoped result, or None when it declares none.

    Classes are always formed over ALL the declared quasi-identifiers, whichever fields the request asks for: two
    extracts of different fields share the subject token, so they could be joined back into the full combination.
    """
    if agreement.k_anonymity is None:
        return None
    keys = AgreementKeySource(found.keyring, agreement.id)
    return KAnonymityRelease(plan, agreement.k_anonymity, agreement.released(), keys)


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
    subject: object = None,
) -> Response:
    """Stream the rows of ``plan``. ``render_factory`` returns (head, batch renderer, tail) for custom bodies.

    ``single`` releases at most one record as one buffered body: every row of the plan is fetched before anything is
    sent (give the plan ``limit=2``); two rows mean the registry holds duplicates for one subject key (502, nothing
    released); no row, or a body of None, is a 404 whose entry is still finalized ``completed`` with 0 rows, so
    compliance sees lookups that found nothing. ``claims`` are only recorded in the log (see ``plan_for_log``).

    ``subject`` (single mode: the subject key value asked for) is indexed with the write-ahead entry, in its one
    durable commit, instead of after the read; the final entry is then queued without waiting. Either way a
    disclosure that sent a record has its subject indexed before any byte left (the accounting of disclosures skips
    final entries that released nothing, so a lookup that found nobody does not list the id asked for).
    """
    # Quotas first: a refused request (429) writes no log entry and releases nothing; the limit is capped to the
    # rows left today.
    plan = await apply_quotas(found, agreement, plan, single=single is not None)
    keysource = AgreementKeySource(found.keyring, agreement.id)
    # Free-text redaction and the egress scan: the registry's names (cached), the row's context columns added to
    # what is fetched (not to what is released or logged), the agreement's egress rule.
    redaction = found.redaction
    # The registry's names are read only after the write-ahead entry (in open_stream): compiling needs only a handle.
    names = DeferredNames() if redaction.needs_names(agreement, plan) else None
    prepared = redaction.prepare(
        agreement, plan, names=names, token_key=lambda: HmacSha256(keysource.tokenize_key(None))
    )
    egress = prepared.egress
    plan = prepared.plan
    kanon = k_anonymity_for(found, agreement, plan)
    compiled = compile_plan(plan, keysource, redactor_factory=prepared.redactor_factory, egress=egress)
    if compiled.unhandled_entities:
        # Fail closed: a redaction the agreement asks for but no detector here performs would leak those entities.
        raise NotImplementedByGatewayError(
            f"agreement {agreement.id!r} asks to redact {', '.join(compiled.unhandled_entities)}, which no "
            "configured detector handles; nothing was released"
        )
    render: Callable[[list[Row]], bytes]
    if single is not None:
        head = tail = b""  # single mode renders its own body (below); no serializer is built for it

        def render(batch: list[Row]) -> bytes:  # replaced below once the body is known
            raise RuntimeError("single mode renders its own body")
    elif render_factory is None:
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
    start = disclosure_start(
        request,
        found,
        principal,
        Subject.of(agreement),
        disclosure_id,
        operation=operation,
        plan=plan_for_log(plan, filter_key, claims),
    )
    log = found.log
    subject_mac = HmacSha256(subject_key).digest  # pads absorbed once: ~2x cheaper per subject than hmac.new
    known = single is not None and subject is not None
    upfront = (subject_mac(str(subject).encode())[:16],) if known else ()
    # Write-ahead: durable before the registry is queried and before any byte can leave.
    start_seq = await log.start_async(start, upfront)
    set_state(request, disclosure_id=disclosure_id)
    batch_rows = found.batch_rows

    def subjects_of(batch: list[Row]) -> list[bytes]:
        return [subject_mac(str(r[0]).encode())[:16] for r in batch]

    def details() -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        if kanon is not None and kanon.verdict is not None:
            out["k_anonymity"] = kanon.details()
        if egress.counts:  # compliance alerts: entity, column and count, never a value
            out["egress_findings"] = egress.alerts()
        return out or None

    def open_stream() -> tuple[Iterator[list[Row]], list[Row] | None]:
        if names is not None:
            names.set(redaction.names(found.catalog, found.connector, plan.dataset.name))
        if kanon is None:
            batches = found.connector.stream(plan, batch_rows=batch_rows)
        else:
            # Two passes over the full scoped result (limit applied after): count the classes, then release.
            verdict = kanon.count(found.connector.stream(kanon.plan, batch_rows=batch_rows))
            if verdict.refused:
                raise KAnonymityRefusedError(
                    f"under this agreement's k-anonymity (k={verdict.k}"
                    + (f", l={verdict.l_diversity}" if verdict.l_diversity else "")
                    + f") more than {verdict.max_suppression:.0%} of the records asked for would be withheld, so "
                    "nothing was released; widen the filters (small groups are what k-anonymity withholds)"
                )
            batches = kanon.release(found.connector.stream(kanon.plan, batch_rows=batch_rows))
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

    def prepare(batch: list[Row]) -> bytes:
        # Rendered (transformed, egress-scanned) first, then the subject index is written, and only then can the
        # batch leave: an accounting of disclosures never misses a child whose data was sent, even if the process
        # dies right after, and a batch the egress scan blocks indexes no one.
        chunk = render_checked(batch)
        if not known:
            log.index_subjects(start_seq, subjects_of(batch))
        return chunk

    def render_checked(batch: list[Row]) -> bytes:
        try:
            return render(batch)
        except EgressBlocked as exc:
            raise EgressBlockedError(
                f"{exc}; under agreement {agreement.id!r} (egress.on_finding: block) nothing more is released. "
                "Exempt the column in egress.exempt if it is released on purpose, or redact it",
                headers={"X-Disclosure-Id": disclosure_id},
            ) from None

    single_body: bytes | None = None
    first_chunk: bytes | None = None
    try:
        if single is not None:
            # Read and rendered in one worker-thread hop, before the response starts: the body depends on nothing
            # but the row (or its absence).
            renderer = single(compiled)

            def read_one() -> tuple[Iterator[list[Row]], list[Row] | None, bytes | None]:
                found_batches, rows = open_stream()
                try:
                    return found_batches, rows, renderer(rows[0] if rows else None)
                except EgressBlocked as exc:
                    raise EgressBlockedError(
                        f"{exc}; nothing was released under agreement {agreement.id!r}",
                        headers={"X-Disclosure-Id": disclosure_id},
                    ) from None

            batches, first, single_body = await anyio.to_thread.run_sync(read_one)
        else:
            batches, first = await anyio.to_thread.run_sync(open_stream)
        if single is None and first is not None:
            # The first batch is rendered before the response starts, so an egress block on it is a clean 409.
            first_chunk = await anyio.to_thread.run_sync(prepare, first)
    except Exception as exc:
        code = exc.code if isinstance(exc, GatewayError) else "internal-error"
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                lambda: log.finish(
                    disclosure_id, status="failed", rows=0, nbytes=0, sha256=None, error=code, details=details()
                )
            )
        raise
    headers = {"X-Disclosure-Id": disclosure_id, "Cache-Control": "no-store"}
    if single is not None:
        if single_body is None:
            # The query was made, so the entry stays: completed, 0 rows, 0 bytes released.
            # Queued, not awaited (nothing leaves but the 404; the write-ahead entry is already durable).
            log.finish(
                disclosure_id, status="completed", rows=0, nbytes=0, sha256=hashlib.sha256().hexdigest(), wait=False
            )
            set_state(request, rows=0, bytes=0, disclosure_status="completed")
            raise NotFoundError(NOT_FOUND_DETAIL, headers=headers)
        body = single_body
        first = first or []  # no row but a body (verify: no match): nothing to index, the body still leaves
        if known:
            # The subject is indexed and the body is a few hundred bytes, known in full: it goes out as one plain
            # response, its final entry queued as it is handed to the server (what "completed" records for every
            # release), without a streaming response's task group and disconnect watcher.
            sent = len(first)
            log.finish(
                disclosure_id,
                status="completed",
                rows=sent,
                nbytes=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
                details=details(),
                wait=False,
            )
            set_state(request, rows=sent, bytes=len(body), disclosure_status="completed")
            return Response(body, media_type=media_type or MEDIA_TYPES[plan.format], headers=headers)
        head = tail = b""  # the body is the whole response

        def render(_batch: list[Row]) -> bytes:
            return body

    def produce() -> tuple[int, bytes, list[bytes]] | None:
        # Several fetched batches per step: one subject-index commit (one fsync) per ~GROUP_ROWS rows instead of
        # one per batch. Fetched and rendered in a worker thread; the caller makes the subjects durable, then sends.
        group: list[list[Row]] = []
        count = 0
        while count < GROUP_ROWS:
            batch = next(batches, None)
            if batch is None:
                break
            group.append(batch)
            count += len(batch)
        if not group:
            return None
        chunks = [render_checked(batch) for batch in group]
        return count, b"".join(chunks), [h for batch in group for h in subjects_of(batch)]

    async def body_iter() -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        rows = nbytes = 0
        status, error = "aborted", None
        ahead: asyncio.Future[tuple[int, bytes, list[bytes]] | None] | None = None
        try:
            if head:
                digest.update(head)
                nbytes += len(head)
                yield head
            if first is not None:
                if first_chunk is not None:
                    chunk = first_chunk
                elif known:
                    chunk = render(first)  # the buffered body; its subject is indexed already
                else:
                    chunk = await anyio.to_thread.run_sync(prepare, first)
                digest.update(chunk)
                rows += len(first)
                nbytes += len(chunk)
                yield chunk
                # Pipelined one group deep: while group n's subjects are committed (the log writer's fsync) and its
                # bytes are sent, group n+1 is fetched and rendered in a worker thread. A group leaves only after
                # its subjects are durable; a group rendered but never sent (a disconnect) is never indexed.
                ahead = asyncio.ensure_future(anyio.to_thread.run_sync(produce))
                # shield: a cancelled response (a disconnect) must not cancel the task while its thread still reads
                # `batches`; the finally block waits for it instead.
                while (item := await asyncio.shield(ahead)) is not None:
                    count, chunk, subjects = item
                    ahead = asyncio.ensure_future(anyio.to_thread.run_sync(produce))
                    await log.index_subjects_async(start_seq, subjects)
                    digest.update(chunk)
                    rows += count
                    nbytes += len(chunk)
                    yield chunk
                ahead = None
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
                if ahead is not None:
                    # The worker thread may still be reading `batches`: let it finish before closing the cursor.
                    await asyncio.wait([ahead])
                    if not ahead.cancelled():
                        ahead.exception()  # retrieved, so asyncio does not report it as never awaited
                if close is not None:
                    await anyio.to_thread.run_sync(close)

                def final() -> None:
                    log.finish(
                        disclosure_id,
                        status=status,
                        rows=rows,
                        nbytes=nbytes,
                        sha256=digest.hexdigest(),
                        error=error,
                        details=details(),
                        wait=single is None,
                    )

                if single is None:
                    await anyio.to_thread.run_sync(final)
                else:
                    final()  # a single record's final entry is queued, not awaited: see above
                set_state(request, rows=rows, bytes=nbytes, disclosure_status=status)
                await watch_volume(found, agreement, disclosure_id=disclosure_id, operation=operation, rows=rows)

    return StreamingResponse(
        body_iter(),
        media_type=media_type or MEDIA_TYPES[plan.format],
        headers=headers,
    )
