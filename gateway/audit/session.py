"""One disclosure's life in the log: the only order in which the product's core rule can be kept.

"Logged before any byte leaves, finished exactly once": a :class:`DisclosureSession` is the one object that owns
that rule (as python-tuf's ``TrustedMetadataSet`` owns the order of metadata updates). It writes the write-ahead
entry before anything reads the registry, indexes the subjects of each batch before the batch may leave, and writes
exactly one final entry whose status comes from one closed set. Any other order raises :class:`SessionMisuseError`
(a programming error, never a client's): indexing before the start, finishing twice, starting twice.

Every path that releases registry data goes through a session: extracts, single records, claim checks, previews,
aggregates and re-identification answers. No route calls the log's ``start``/``finish`` itself.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread

from gateway.audit.log import DisclosureLog, DisclosureStart
from gateway.audit.subjects import release_order
from gateway.errors import GatewayError
from gateway.telemetry import metrics
from policies import RequestError
from tlog import RootAccumulator

__all__ = ["DisclosureSession", "FinishStatus", "SessionMisuseError", "error_code"]

#: the SHA-256 of nothing: what a disclosure that sent no byte records
EMPTY_SHA256 = hashlib.sha256().hexdigest()


class FinishStatus(enum.StrEnum):
    """How a disclosure ended (the closed set of the final entry's ``status``)."""

    COMPLETED = "completed"  # every byte of the body was handed to the server
    ABORTED = "aborted"  # the client went away mid-body; rows/bytes say how much had been sent
    FAILED = "failed"  # nothing more was sent because something failed (error says what)


class SessionMisuseError(RuntimeError):
    """The code broke the order of a disclosure (a bug in the gateway, not a client error)."""


def error_code(exc: BaseException) -> str:
    """The ``error`` a failed disclosure records: the gateway's problem code, or one fixed code for anything else
    (an exception's type or text might name a value; the application log has the traceback)."""
    code = exc.code if isinstance(exc, GatewayError | RequestError) else None
    if isinstance(code, str) and code:
        return code[:64]
    return "internal-error"


class _State(enum.Enum):
    NEW = "new"
    STARTED = "started"
    FINISHED = "finished"


class DisclosureSession:
    """The log entries of one disclosure, kept in order. Cheap: it holds the start entry and a sequence number."""

    __slots__ = ("_finish_status", "_last", "_log", "_order", "_released", "_start", "_start_seq", "_state")

    def __init__(self, log: DisclosureLog, start: DisclosureStart) -> None:
        self._log = log
        self._start = start
        self._state = _State.NEW
        self._start_seq = -1
        self._finish_status: FinishStatus | None = None
        # The subject-set commitment: the root over the subject-index hashes in release order (the order
        # gateway.audit.subjects.release_order gives), so that `gateway log verify` can rebuild it from the index.
        self._order = release_order(start.agreement_id)
        self._released = RootAccumulator()
        self._last = b""

    def __repr__(self) -> str:  # the id and state only: the start entry's plan may hold filter values
        return f"DisclosureSession({self._start.disclosure_id!r}, {self._state.value})"

    @property
    def disclosure_id(self) -> str:
        return self._start.disclosure_id

    @property
    def started(self) -> bool:
        return self._state is not _State.NEW

    @property
    def finished(self) -> bool:
        return self._state is _State.FINISHED

    @property
    def status(self) -> FinishStatus | None:
        return self._finish_status

    # -- write-ahead ---------------------------------------------------------------------------------------------

    def _starting(self) -> None:
        if self._state is not _State.NEW:
            raise SessionMisuseError(f"disclosure {self.disclosure_id} was already started")

    async def start(self, subjects: Sequence[bytes] = ()) -> None:
        """Write the write-ahead entry and wait until it is durable. ``subjects`` known before the registry is read
        (a single-record lookup) are indexed in the same commit."""
        self._starting()
        ordered = self._in_order(subjects, ordered=False)
        self._start_seq = await self._log.start_async(self._start, ordered)
        self._state = _State.STARTED
        self._commit(ordered)

    def start_sync(self, subjects: Sequence[bytes] = ()) -> None:
        """``start`` from a worker thread or a command-line tool."""
        self._starting()
        ordered = self._in_order(subjects, ordered=False)
        self._start_seq = self._log.start(self._start, ordered)
        self._state = _State.STARTED
        self._commit(ordered)

    # -- the subject-set commitment ------------------------------------------------------------------------------

    def _in_order(self, subjects: Sequence[bytes], *, ordered: bool) -> list[bytes]:
        """``subjects`` in release order, each once, after every subject committed so far (else misuse)."""
        order = self._order
        if not subjects:
            return []
        if ordered:
            # An extract's group is sorted by this very key already (gateway.release.order): only its ends are keyed
            # here, not every row; a repeated subject (a registry duplicate) sits next to itself and is dropped.
            batch = list(subjects)
            if any(a == b for a, b in itertools.pairwise(batch)):
                batch = list(dict.fromkeys(batch))
            first, last = order(batch[0]), order(batch[-1])
        else:
            pairs = sorted({(order(h), h) for h in subjects})
            batch = [h for _, h in pairs]
            first, last = pairs[0][0], pairs[-1][0]
        if first <= self._last:
            if first == self._last and len(batch) > 1 and order(batch[1]) > self._last:
                batch, first = batch[1:], order(batch[1])  # the previous batch's last subject, once more
            elif first == self._last and len(batch) == 1:
                return []
            else:
                raise SessionMisuseError(f"disclosure {self.disclosure_id}: subjects indexed out of release order")
        self._last = last
        return batch

    def _commit(self, subjects: list[bytes]) -> None:
        self._released.extend(subjects)

    def commitment(self) -> dict[str, Any]:
        """What the final entry commits to: how many subjects, and the root over their hashes in release order."""
        return {"count": self._released.size, "root": self._released.root().hex()}

    # -- subjects before bytes -----------------------------------------------------------------------------------

    def _indexing(self) -> None:
        if self._state is not _State.STARTED:
            raise SessionMisuseError(f"disclosure {self.disclosure_id}: subjects indexed outside an open disclosure")

    def index(self, subjects: Sequence[bytes], *, ordered: bool = False) -> None:
        """Make the subjects of a batch durable in the subject index (call before the batch may leave).
        ``ordered``: the batch is in release order already (extracts); otherwise it is sorted here."""
        self._indexing()
        batch = self._in_order(subjects, ordered=ordered)
        if batch:
            self._log.index_subjects(self._start_seq, batch)
            self._commit(batch)

    async def index_async(self, subjects: Sequence[bytes], *, ordered: bool = False) -> None:
        self._indexing()
        batch = self._in_order(subjects, ordered=ordered)
        if batch:
            await self._log.index_subjects_async(self._start_seq, batch)
            self._commit(batch)

    # -- exactly one finish --------------------------------------------------------------------------------------

    def finish(
        self,
        status: FinishStatus,
        *,
        rows: int = 0,
        nbytes: int = 0,
        sha256: str | None = EMPTY_SHA256,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
        wait: bool = True,
    ) -> None:
        """Write the final entry (``wait=False`` queues it: the write-ahead entry is what had to be durable)."""
        if self._state is not _State.STARTED:
            raise SessionMisuseError(
                f"disclosure {self.disclosure_id}: "
                + ("finished twice" if self._state is _State.FINISHED else "finished before it was started")
            )
        if not isinstance(status, FinishStatus):
            raise SessionMisuseError(f"disclosure {self.disclosure_id}: unknown final status")
        # Marked first: a finish that raises (the log is down) is not retried as a second final entry.
        self._state = _State.FINISHED
        self._finish_status = status
        _count_findings(details)
        self._log.finish(
            self.disclosure_id,
            status=status.value,
            rows=rows,
            nbytes=nbytes,
            sha256=sha256,
            error=error,
            details=details,
            wait=wait,
            subjects=self.commitment(),
        )

    def fail(self, exc: BaseException, *, details: Mapping[str, Any] | None = None) -> None:
        """Finish as ``failed`` because of ``exc`` (nothing was sent), unless already finished."""
        if self._state is _State.STARTED:
            self.finish(FinishStatus.FAILED, sha256=None, error=error_code(exc), details=details)

    async def fail_async(self, exc: BaseException, *, details: Mapping[str, Any] | None = None) -> None:
        """``fail`` from the event loop: in a worker thread, shielded, so a cancelled request still finishes."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: self.fail(exc, details=details))

    async def finish_async(self, status: FinishStatus, **values: Any) -> None:
        """``finish`` from the event loop: in a worker thread, shielded from cancellation (a disconnect)."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: self.finish(status, **values))


def _count_findings(details: Mapping[str, Any] | None) -> None:
    """Egress findings of one release (entity, column, count: never a value) into the metrics, by entity type."""
    for alert in (details or {}).get("egress_findings") or ():
        entity, count = alert.get("entity"), alert.get("count")
        if isinstance(entity, str) and isinstance(count, int) and count > 0:
            metrics.EGRESS_FINDINGS.labels(entity=entity).inc(count)
