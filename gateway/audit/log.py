"""The disclosure log: a write-ahead, tamper-evident record of every release.

Each disclosure produces two append-only leaves: ``disclosure.started`` (who, agreement id + version + digest,
approver, legal basis, purpose, the plan: fields with operators, conditions, limit), committed before the registry is
queried, and ``disclosure.finished`` (status, rows, bytes, SHA-256 of the released bytes). A crash in between leaves
only the first, which compliance sees as a disclosure that never finished. If the first cannot be written, the
request fails with 503 and nothing is released, like an audit device that cannot record.

Leaves are RFC 8785 canonical JSON in an RFC 9162 Merkle tree. Appends go through one writer thread per process that
commits whatever is queued in one transaction (group commit: one fsync for many requests). Each transaction first
locks the ``log_head`` row, so indexes are assigned exactly once across every process writing to one database (no
gaps, no forks, no duplicates); the head also holds the tree's right border, from which the new tree nodes are
computed and stored. Signed checkpoints (C2SP tlog-checkpoint, Ed25519) are written every N entries or T seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.applog import get_logger
from gateway.db import CheckpointRow, DisclosureRow, LogEntryRow, LogHeadRow, LogNodeRow, SubjectIndexRow, utcnow
from gateway.errors import AuditUnavailableError
from tlog import Checkpoint, Node, Signer, TreeAppender, sign_checkpoint
from tlog.canonical import canonical_json

__all__ = [
    "FINAL_STATUSES",
    "DisclosureLog",
    "DisclosureStart",
    "LogEvent",
    "MemoryDisclosureLog",
    "SqlDisclosureLog",
    "leaf_hash_hex",
]

_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
_head = LogHeadRow.__table__  # type: ignore[attr-defined]
_nodes = LogNodeRow.__table__  # type: ignore[attr-defined]
_checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]
_subjects = SubjectIndexRow.__table__  # type: ignore[attr-defined]
_log = get_logger("gateway.audit.log")

FINAL_STATUSES = frozenset({"completed", "aborted", "failed"})


def leaf_hash_hex(body: bytes) -> str:
    return hashlib.sha256(b"\x00" + body).hexdigest()


def _ts(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class DisclosureStart:
    disclosure_id: str
    request_id: str
    principal: str
    agreement_id: str
    agreement_version: int
    agreement_digest: str
    approved_by: str
    legal_basis: str
    purpose: str
    operation: str
    plan: Mapping[str, Any]
    started_at: dt.datetime = field(default_factory=utcnow)
    #: who accepted the version's measured risk above the catalog threshold, why, and the figures (None: not needed)
    risk_acceptance: Mapping[str, Any] | None = None

    def entry(self) -> dict[str, Any]:
        entry = {
            "type": "disclosure.started",
            "disclosure_id": self.disclosure_id,
            "request_id": self.request_id,
            "time": _ts(self.started_at),
            "recipient": self.principal,
            "agreement": {"id": self.agreement_id, "version": self.agreement_version, "digest": self.agreement_digest},
            "approved_by": self.approved_by,
            "legal_basis": self.legal_basis,
            "purpose": self.purpose,
            "operation": self.operation,
            "plan": dict(self.plan),
        }
        if self.risk_acceptance is not None:
            # Only then: entries of versions within the threshold keep the shape they always had.
            entry["risk_acceptance"] = dict(self.risk_acceptance)
        return entry


@dataclass(frozen=True, slots=True)
class DisclosureFinish:
    disclosure_id: str
    status: str
    rows: int
    nbytes: int
    sha256: str | None
    error: str | None
    details: Mapping[str, Any] | None
    finished_at: dt.datetime

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "disclosure.finished",
            "disclosure_id": self.disclosure_id,
            "time": _ts(self.finished_at),
            "status": self.status,
            "rows": self.rows,
            "bytes": self.nbytes,
            "sha256": self.sha256,
            "error": self.error,
        }
        if self.details:
            entry["details"] = dict(self.details)
        return entry


_EVENT_TYPE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")


@dataclass(frozen=True, slots=True)
class LogEvent:
    """A log entry that is not a disclosure: agreement state changes, alerts, key lifecycle, approvals.

    It goes through the same group commit and Merkle tree as disclosures but touches no other table (the disclosures
    table is only for disclosures). Build it with :meth:`of`, which checks the entry before it reaches the writer.
    """

    body: Mapping[str, Any]
    created_at: dt.datetime
    disclosure_id: None = None

    @classmethod
    def of(cls, entry: Mapping[str, Any], *, at: dt.datetime | None = None) -> LogEvent:
        kind = entry.get("type")
        if not isinstance(kind, str) or not _EVENT_TYPE.match(kind) or kind.startswith("disclosure."):
            raise ValueError("an event needs a dotted lowercase 'type' outside the reserved 'disclosure.' family")
        if "index" in entry:
            raise ValueError("'index' is assigned by the log")
        moment = at or utcnow()
        body = {"time": _ts(moment), **entry}
        canonical_json(body)  # refuse floats, huge ints and odd types here, not in the writer thread
        return cls(body, moment)

    @property
    def kind(self) -> str:
        return str(self.body["type"])

    def entry(self) -> dict[str, Any]:
        return dict(self.body)


class DisclosureLog(Protocol):
    def start(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        """Write the write-ahead entry; return its index once durable. ``subjects`` (subject-index hashes known
        before the registry is read, as in a single-record lookup) are committed in the same transaction."""
        ...

    async def start_async(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        """``start`` for the event loop: awaits the same durable commit without occupying a worker thread."""
        ...

    def append_event(self, entry: Mapping[str, Any]) -> int:
        """Append a non-disclosure entry (see :class:`LogEvent`); return its index. Fails closed like ``start``."""
        ...

    def finish(
        self,
        disclosure_id: str,
        *,
        status: str,
        rows: int,
        nbytes: int,
        sha256: str | None,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
        wait: bool = True,
    ) -> int | None:
        """Write the final entry. ``wait=False`` queues it and returns None at once: the write-ahead entry is what
        must be durable before bytes leave; a final entry lost in a crash leaves the disclosure ``started``."""
        ...

    def index_subjects(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None: ...

    async def index_subjects_async(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None:
        """``index_subjects`` for the event loop (no worker thread waits on the commit)."""
        ...

    def flush(self) -> None:
        """Return once every entry queued before the call is written (readers in this process see it)."""
        ...

    def ping(self) -> None: ...

    def checkpoint(self) -> str | None:
        """Sign a checkpoint of the current head now if the log grew since the last one; return its note, or None
        (nothing new, or a log without a signing key)."""
        ...


def _make_finish(
    disclosure_id: str,
    status: str,
    rows: int,
    nbytes: int,
    sha256: str | None,
    error: str | None,
    details: Mapping[str, Any] | None,
) -> DisclosureFinish:
    if status not in FINAL_STATUSES:
        raise ValueError(f"unknown final status {status!r}")
    return DisclosureFinish(disclosure_id, status, rows, nbytes, sha256, error, details, utcnow())


def _entry_kind(op: DisclosureStart | DisclosureFinish | LogEvent) -> str:
    if isinstance(op, LogEvent):
        return op.kind
    return "disclosure.started" if isinstance(op, DisclosureStart) else "disclosure.finished"


def _entry_time(op: DisclosureStart | DisclosureFinish | LogEvent) -> dt.datetime:
    if isinstance(op, LogEvent):
        return op.created_at
    return op.started_at if isinstance(op, DisclosureStart) else op.finished_at


@dataclass(frozen=True, slots=True)
class _IndexOp:
    """Subject-index rows for one released batch: committed with whatever entries share the group."""

    disclosure_seq: int
    subject_hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class _Barrier:
    """Writes nothing: done once everything queued before it is (``flush``)."""


_Op = DisclosureStart | DisclosureFinish | LogEvent | _IndexOp | _Barrier


class EntryParts:
    """An entry's canonical JSON without its index, split where ``"index"`` sorts in: the writer (one thread, the
    log's serial section) only has to splice in the number. Built in the caller's thread."""

    __slots__ = ("head", "plan", "tail")

    def __init__(self, entry: Mapping[str, Any], plan: Mapping[str, Any] | None = None) -> None:
        if "index" in entry or not all(k.isascii() for k in entry):
            # Top-level keys are fixed ASCII names (code-point order is RFC 8785's UTF-16 order there).
            raise ValueError("entry keys must be ASCII and must not include 'index'")
        before = canonical_json({k: v for k, v in entry.items() if k < "index"})
        after = canonical_json({k: v for k, v in entry.items() if k > "index"})
        self.head = before[:-1] + (b"," if len(before) > 2 else b"") + b'"index":'
        self.tail = (b"," if len(after) > 2 else b"") + after[1:]
        #: the disclosures table's copy of a start's plan, canonical too
        self.plan = canonical_json(dict(plan)).decode("utf-8") if plan is not None else None

    def body(self, index: int) -> bytes:
        """Exactly ``canonical_json({"index": index, **entry})``."""
        return self.head + str(index).encode("ascii") + self.tail


def _parts_of(op: _Op) -> EntryParts | None:
    if isinstance(op, _IndexOp | _Barrier):
        return None
    entry = op.entry()
    if "index" in entry or not all(k.isascii() for k in entry):
        return None  # the writer serializes it whole (and refuses what must be refused) as before
    return EntryParts(entry, op.plan if isinstance(op, DisclosureStart) else None)


class _Pending:
    __slots__ = ("done", "error", "future", "op", "parts", "result", "subjects", "waited")

    def __init__(
        self,
        op: _Op,
        subjects: tuple[bytes, ...] = (),
        *,
        waited: bool = True,
        future: tuple[asyncio.AbstractEventLoop, asyncio.Future[int]] | None = None,
    ) -> None:
        self.op = op
        self.parts = _parts_of(op)  # canonical JSON now, in the caller's thread, not in the writer's
        self.subjects = subjects
        self.waited = waited
        self.future = future
        self.done = threading.Event()
        self.result: int | None = None
        self.error: BaseException | None = None

    def settle(self) -> None:
        """Wake the waiter: a thread on ``done``, or a coroutine through its loop (from the writer thread)."""
        self.done.set()
        if self.future is not None:
            loop, future = self.future
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_settle_future, future, self.result, self.error)


def _settle_future(future: asyncio.Future[int], result: int | None, error: BaseException | None) -> None:
    if future.done():  # timed out or cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    elif result is None:  # pragma: no cover - the writer always sets one or the other
        future.set_exception(RuntimeError("the disclosure log write failed"))
    else:
        future.set_result(result)


_STARTED_COLUMNS = (
    "id",
    "request_id",
    "principal",
    "agreement_id",
    "agreement_version",
    "agreement_digest",
    "approved_by",
    "legal_basis",
    "purpose",
    "operation",
    "status",
    "started_at",
    "rows",
    "bytes",
    "start_seq",
    "plan",
)
_FINISHED_COLUMNS = ("status", "finished_at", "rows", "bytes", "sha256", "finish_seq", "error", "details")


def _insert_sql(table: str, columns: Sequence[str], mark: str) -> str:
    # Only fixed identifiers and placeholders are interpolated; values always travel as parameters.
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"  # noqa: S608


def _update_sql(table: str, columns: Sequence[str], key: str, mark: str) -> str:
    return f"UPDATE {table} SET {', '.join(f'{c} = {mark}' for c in columns)} WHERE {key} = {mark}"  # noqa: S608


class SqlDisclosureLog:
    """The log in the gateway database (SQLite or PostgreSQL), with group commit and signed checkpoints."""

    def __init__(
        self,
        engine: Engine,
        *,
        signer: Signer | None = None,
        origin: str = "dx-gateway.local/disclosure-log",
        checkpoint_every: int = 1000,
        checkpoint_interval_s: float = 10.0,
        write_timeout_s: float = 10.0,
        max_group: int = 512,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._origin = origin
        self._checkpoint_every = checkpoint_every
        self._checkpoint_interval_s = checkpoint_interval_s
        self._write_timeout_s = write_timeout_s
        self._max_group = max_group
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closed = False
        self._last_checkpoint_size = -1
        self._last_checkpoint_time = 0.0
        self._is_sqlite = engine.dialect.name == "sqlite"
        mark = "?" if self._is_sqlite else "%s"
        self._sql = {
            # only placeholders are interpolated into these statements
            "entries": "INSERT INTO log_entries (seq, kind, disclosure_id, body, leaf_hash, created_at) VALUES "  # noqa: S608
            f"({', '.join([mark] * 6)})",
            "nodes": f"INSERT INTO log_nodes (level, idx, hash) VALUES ({mark}, {mark}, {mark})",  # noqa: S608
            "started": _insert_sql("disclosures", _STARTED_COLUMNS, mark),
            "finished": _update_sql("disclosures", _FINISHED_COLUMNS, "id", mark),
            "subjects": (
                "INSERT OR IGNORE INTO subject_index (subject_hash, disclosure_seq) VALUES (?, ?)"
                if self._is_sqlite
                else "INSERT INTO subject_index (subject_hash, disclosure_seq) VALUES (%s, %s) ON CONFLICT DO NOTHING"
            ),
        }

        # SQLite's multi-row forms (UPDATE ... FROM needs 3.33); parameters per statement kept under the default
        # limit of SQLite >= 3.32 (32766), whatever this build allows.
        self._multirow: dict[str, str] = {}
        self._max_variables = 32_000
        if self._is_sqlite and sqlite3.sqlite_version_info >= (3, 33):
            finished_set = ", ".join(f"{c} = v.column{i + 1}" for i, c in enumerate(_FINISHED_COLUMNS))
            self._multirow = {
                "entries": "INSERT INTO log_entries (seq, kind, disclosure_id, body, leaf_hash, created_at) "
                "VALUES {values}",
                "nodes": "INSERT INTO log_nodes (level, idx, hash) VALUES {values}",
                "started": f"INSERT INTO disclosures ({', '.join(_STARTED_COLUMNS)}) VALUES {{values}}",  # noqa: S608
                "finished": f"UPDATE disclosures SET {finished_set} FROM (VALUES {{values}}) AS v "  # noqa: S608
                f"WHERE disclosures.id = v.column{len(_FINISHED_COLUMNS) + 1}",
                "subjects": "INSERT OR IGNORE INTO subject_index (subject_hash, disclosure_seq) VALUES {values}",
            }

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def signer(self) -> Signer | None:
        return self._signer

    # -- public API (called from request threads) ---------------------------------------------------------------
    def start(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        return self._submit(start, tuple(dict.fromkeys(subjects)))

    async def start_async(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        return await self._submit_async(start, tuple(dict.fromkeys(subjects)))

    async def index_subjects_async(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None:
        if subject_hashes:
            await self._submit_async(_IndexOp(disclosure_seq, tuple(dict.fromkeys(subject_hashes))))

    async def _submit_async(self, op: _Op, subjects: tuple[bytes, ...] = ()) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._enqueue(_Pending(op, subjects, future=(loop, future)))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._write_timeout_s)
        except TimeoutError:
            raise AuditUnavailableError(
                "the disclosure log did not confirm the write in time; nothing was released"
            ) from None
        except AuditUnavailableError:
            raise
        except Exception as exc:
            raise AuditUnavailableError(
                "the disclosure log cannot be written, so nothing was released; try again later or tell the "
                "gateway operator"
            ) from exc
        finally:
            # Timed out or cancelled: nobody will read the writer's late result, so the future is cancelled now
            # (the writer then skips it; otherwise asyncio would print the unretrieved error, SQL included, on
            # stderr past the log scrubber).
            if not future.done():
                future.cancel()

    def append_event(self, entry: Mapping[str, Any]) -> int:
        return self._submit(LogEvent.of(entry))

    def finish(
        self,
        disclosure_id: str,
        *,
        status: str,
        rows: int,
        nbytes: int,
        sha256: str | None,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
        wait: bool = True,
    ) -> int | None:
        op = _make_finish(disclosure_id, status, rows, nbytes, sha256, error, details)
        if wait:
            return self._submit(op)
        self._enqueue(_Pending(op, waited=False))
        return None

    def flush(self) -> None:
        self._submit(_Barrier())

    def index_subjects(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None:
        """Index the subjects of a batch about to be released; returns once they are durable.

        Goes through the writer so it shares the group commit (one fsync) with concurrent log entries.
        """
        if subject_hashes:
            self._submit(_IndexOp(disclosure_seq, tuple(dict.fromkeys(subject_hashes))))

    def ping(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.select(_head.c.size)).scalar_one()
        except SQLAlchemyError as exc:
            raise AuditUnavailableError("the gateway database is not reachable") from exc

    def close(self) -> None:
        with self._thread_lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=self._write_timeout_s)

    def checkpoint(self) -> str | None:
        """Sign a checkpoint of the current head now (if the log grew since the last one); return its note."""
        if self._signer is None:
            return None
        with self._engine.begin() as conn:
            size, border = self._lock_head(conn)
            appender = TreeAppender(size, border)
            return self._write_checkpoint(conn, size, appender.root())

    # -- writer thread ------------------------------------------------------------------------------------------
    def _enqueue(self, pending: _Pending) -> None:
        self._ensure_thread()
        self._queue.put(pending)

    def _submit(self, op: _Op, subjects: tuple[bytes, ...] = ()) -> int:
        pending = _Pending(op, subjects)
        self._enqueue(pending)
        if not pending.done.wait(self._write_timeout_s):
            # The entry may still be written later; the caller treats it as not written and releases nothing.
            raise AuditUnavailableError("the disclosure log did not confirm the write in time; nothing was released")
        if pending.error is not None:
            raise AuditUnavailableError(
                "the disclosure log cannot be written, so nothing was released; try again later or tell the "
                "gateway operator"
            ) from pending.error
        if pending.result is None:  # pragma: no cover - the writer always sets one or the other
            raise AuditUnavailableError("the disclosure log write failed")
        return pending.result

    def _ensure_thread(self) -> None:
        with self._thread_lock:
            if self._closed:
                raise AuditUnavailableError("the disclosure log is closed")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="disclosure-log-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._checkpoint_interval_s)
            except queue.Empty:
                self._maybe_checkpoint_idle()
                continue
            if first is None:
                return
            group = [first]
            while len(group) < self._max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
            self._commit_group(group)

    def _db_time(self, moment: dt.datetime) -> Any:
        # Raw inserts bypass SQLAlchemy's type processing: store SQLite timestamps the way SQLAlchemy reads them.
        if self._is_sqlite:
            return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return moment

    def _lock_head(self, conn: Connection) -> tuple[int, list[bytes]]:
        # A write first: it takes SQLite's write lock (waiting on busy_timeout) or PostgreSQL's row lock, so the
        # read that follows sees the head no other appender can move until we commit.
        conn.execute(sa.update(_head).where(_head.c.id == 1).values(size=_head.c.size))
        row = conn.execute(sa.select(_head.c.size, _head.c.border).where(_head.c.id == 1)).one()
        return int(row.size), [bytes.fromhex(h) for h in json.loads(row.border)]

    def _commit_group(self, group: list[_Pending]) -> None:
        if all(isinstance(p.op, _Barrier) for p in group):
            for pending in group:
                pending.result = 0
                pending.settle()
            return
        try:
            with self._engine.begin() as conn:
                size, border = self._lock_head(conn)
                appender = TreeAppender(size, border)
                entries: list[tuple[Any, ...]] = []
                nodes: list[Node] = []
                subjects: list[tuple[bytes, int]] = []
                started: list[tuple[Any, ...]] = []
                finished: list[tuple[Any, ...]] = []
                results: list[int] = []
                for pending in group:
                    op = pending.op
                    if isinstance(op, _IndexOp):
                        subjects.extend(zip(op.subject_hashes, itertools.repeat(op.disclosure_seq)))
                        results.append(op.disclosure_seq)
                        continue
                    if isinstance(op, _Barrier):
                        results.append(0)
                        continue
                    seq = appender.size
                    parts = pending.parts
                    body = parts.body(seq) if parts is not None else canonical_json({"index": seq, **op.entry()})
                    leaf = hashlib.sha256(b"\x00" + body).digest()
                    nodes.extend(appender.append(leaf))
                    entries.append(
                        (
                            seq,
                            _entry_kind(op),
                            op.disclosure_id,
                            body.decode("utf-8"),
                            leaf.hex(),
                            self._db_time(_entry_time(op)),
                        )
                    )
                    if isinstance(op, DisclosureStart):
                        started.append(self._started_row(op, seq, parts.plan if parts is not None else None))
                        subjects.extend(zip(pending.subjects, itertools.repeat(seq)))
                    elif isinstance(op, DisclosureFinish):
                        finished.append(self._finished_row(op, seq))
                    results.append(seq)
                # Driver-level executemany: SQLAlchemy's per-row parameter processing costs more than the inserts.
                # Starts before finishes: a finish may follow its start in the same group.
                self._write_rows(conn, "entries", entries)
                self._write_rows(conn, "nodes", [(n.level, n.index, n.hash.hex()) for n in nodes])
                self._write_rows(conn, "started", started)
                self._write_rows(conn, "finished", finished)
                # In key order: the index is keyed by random hashes, and sorted inserts walk its B-tree once
                # instead of jumping to a random page per row (a 16k-row group: 4x less time in the writer).
                subjects.sort()
                self._write_rows(conn, "subjects", subjects)
                conn.execute(
                    sa.update(_head)
                    .where(_head.c.id == 1)
                    .values(size=appender.size, border=json.dumps([n.hash.hex() for n in appender.border]))
                )
                if self._checkpoint_due(appender.size):
                    self._write_checkpoint(conn, appender.size, appender.root())
        except Exception as exc:
            _log.error("log_group_failed", error_type=type(exc).__name__, entries=len(group))
            for pending in group:
                if not pending.waited and isinstance(pending.op, DisclosureFinish):
                    # Nobody waits for this one: say which disclosure stays 'started' (its id is not personal data).
                    _log.error("disclosure_finish_lost", disclosure_id=pending.op.disclosure_id)
                pending.error = exc
                pending.settle()
            return
        for pending, seq in zip(group, results, strict=True):
            pending.result = seq
            pending.settle()

    def _write_rows(self, conn: Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """Insert (or, for ``finished``, update) ``rows`` with the statement named ``statement``.

        PostgreSQL: one driver executemany (psycopg pipelines it); subject-index rows, thousands per extract group,
        as one ``INSERT ... SELECT FROM unnest(arrays)``. SQLite: as few statements as possible, each with
        many rows (``VALUES (...), (...)``; finishes with ``UPDATE ... FROM (VALUES ...)``). The sqlite3 module
        releases the GIL around every row step of an executemany, and under load each release cost the writer ~0.2
        ms to get it back from the request threads: 11 ms of a 20 ms group commit went there.
        """
        if not rows:
            return
        if statement == "subjects" and not self._is_sqlite:
            # One statement for the whole group: psycopg's executemany runs one INSERT per row on the server.
            hashes, seqs = zip(*rows, strict=True)
            conn.exec_driver_sql(
                "INSERT INTO subject_index (subject_hash, disclosure_seq) "
                "SELECT * FROM unnest(%s::bytea[], %s::bigint[]) ON CONFLICT DO NOTHING",
                (list(hashes), list(seqs)),
            )
            return
        if not self._multirow:
            conn.exec_driver_sql(self._sql[statement], rows)
            return
        width = len(rows[0])
        one = "(" + ", ".join(["?"] * width) + ")"
        per = max(1, self._max_variables // width)
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            values = ", ".join([one] * len(chunk))
            conn.exec_driver_sql(
                self._multirow[statement].format(values=values), tuple(itertools.chain.from_iterable(chunk))
            )

    def _started_row(self, op: DisclosureStart, seq: int, plan: str | None) -> tuple[Any, ...]:
        return (
            op.disclosure_id,
            op.request_id,
            op.principal,
            op.agreement_id,
            op.agreement_version,
            op.agreement_digest,
            op.approved_by,
            op.legal_basis,
            op.purpose,
            op.operation,
            "started",
            self._db_time(op.started_at),
            0,
            0,
            seq,
            plan if plan is not None else canonical_json(dict(op.plan)).decode("utf-8"),
        )

    def _finished_row(self, op: DisclosureFinish, seq: int) -> tuple[Any, ...]:
        return (
            op.status,
            self._db_time(op.finished_at),
            op.rows,
            op.nbytes,
            op.sha256,
            seq,
            op.error,
            canonical_json(dict(op.details)).decode("utf-8") if op.details else None,
            op.disclosure_id,
        )

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def _checkpoint_due(self, size: int) -> bool:
        if self._signer is None or size <= self._last_checkpoint_size:
            return False
        if self._last_checkpoint_size < 0 or size - self._last_checkpoint_size >= self._checkpoint_every:
            return True
        return time.monotonic() - self._last_checkpoint_time >= self._checkpoint_interval_s

    def _write_checkpoint(self, conn: Connection, size: int, root: bytes) -> str | None:
        if self._signer is None:
            return None
        existing = conn.execute(sa.select(_checkpoints.c.note).where(_checkpoints.c.size == size)).scalar_one_or_none()
        if existing is not None:
            note: str = existing
        else:
            note = sign_checkpoint(Checkpoint(self._origin, size, root), self._origin, self._signer)
            conn.execute(sa.insert(_checkpoints).values(size=size, root=root.hex(), note=note, created_at=utcnow()))
        self._last_checkpoint_size = size
        self._last_checkpoint_time = time.monotonic()
        return note

    def _maybe_checkpoint_idle(self) -> None:
        if self._signer is None:
            return
        try:
            with self._engine.begin() as conn:
                latest = conn.execute(sa.select(sa.func.max(_checkpoints.c.size))).scalar()
                head = conn.execute(sa.select(_head.c.size).where(_head.c.id == 1)).scalar()
                if head is not None and head > 0 and (latest is None or head > latest):
                    size, border = self._lock_head(conn)
                    self._write_checkpoint(conn, size, TreeAppender(size, border).root())
        except IntegrityError:
            pass  # another process signed the same size first: same tree, nothing lost
        except SQLAlchemyError as exc:
            _log.warning("checkpoint_failed", error_type=type(exc).__name__)


class MemoryDisclosureLog:
    """In-memory fake with the same contract; ``failing = True`` simulates a log that cannot be written."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.failing = False
        self.subjects: dict[int, set[bytes]] = {}
        self._lock = threading.Lock()

    def _append(self, entry: dict[str, Any]) -> int:
        if self.failing:
            raise AuditUnavailableError("the disclosure log cannot be written, so nothing was released")
        with self._lock:
            seq = len(self.entries)
            self.entries.append({"index": seq, **entry})
            return seq

    def start(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        seq = self._append(start.entry())
        if subjects:
            self.subjects.setdefault(seq, set()).update(subjects)
        return seq

    async def start_async(self, start: DisclosureStart, subjects: Sequence[bytes] = ()) -> int:
        return self.start(start, subjects)

    def append_event(self, entry: Mapping[str, Any]) -> int:
        return self._append(LogEvent.of(entry).entry())

    def finish(
        self,
        disclosure_id: str,
        *,
        status: str,
        rows: int,
        nbytes: int,
        sha256: str | None,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
        wait: bool = True,
    ) -> int | None:
        seq = self._append(_make_finish(disclosure_id, status, rows, nbytes, sha256, error, details).entry())
        return seq if wait else None

    def flush(self) -> None:
        """Nothing is queued in memory."""

    def index_subjects(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None:
        if self.failing:
            raise AuditUnavailableError("the disclosure log cannot be written")
        self.subjects.setdefault(disclosure_seq, set()).update(subject_hashes)

    async def index_subjects_async(self, disclosure_seq: int, subject_hashes: Sequence[bytes]) -> None:
        self.index_subjects(disclosure_seq, subject_hashes)

    def ping(self) -> None:
        if self.failing:
            raise AuditUnavailableError("the disclosure log is not reachable")

    def checkpoint(self) -> str | None:
        """The fake signs nothing."""
        return None


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
