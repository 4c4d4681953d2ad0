"""The SQL disclosure log: one writer thread per process, group commit, the Merkle tree's nodes and checkpoints.

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
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.applog import get_logger
from gateway.audit.entries import (
    DisclosureFinish,
    DisclosureStart,
    EntryParts,
    LogEvent,
    entry_kind,
    entry_time,
    make_finish,
)
from gateway.db import CheckpointRow, DisclosureRow, LogEntryRow, LogHeadRow, LogNodeRow, SubjectIndexRow, utcnow
from gateway.errors import AuditUnavailableError
from gateway.telemetry import metrics, tracing
from tlog import Checkpoint, Signer, TreeAppender, sign_checkpoint
from tlog.canonical import canonical_json

__all__ = ["SqlDisclosureLog", "b64"]

_entries = LogEntryRow.__table__  # type: ignore[attr-defined]
_disclosures = DisclosureRow.__table__  # type: ignore[attr-defined]
_head = LogHeadRow.__table__  # type: ignore[attr-defined]
_nodes = LogNodeRow.__table__  # type: ignore[attr-defined]
_checkpoints = CheckpointRow.__table__  # type: ignore[attr-defined]
_subjects = SubjectIndexRow.__table__  # type: ignore[attr-defined]
_log = get_logger("gateway.audit.sql_log")


@dataclass(frozen=True, slots=True)
class _IndexOp:
    """Subject-index rows for one released batch: committed with whatever entries share the group."""

    disclosure_seq: int
    subject_hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class _Barrier:
    """Writes nothing: done once everything queued before it is (``flush``)."""


_Op = DisclosureStart | DisclosureFinish | LogEvent | _IndexOp | _Barrier


@dataclass(slots=True)
class _GroupRows:
    """What one group commit writes, per table, and the result of each pending op in order."""

    entries: list[tuple[Any, ...]] = field(default_factory=list)
    nodes: list[tuple[Any, ...]] = field(default_factory=list)
    started: list[tuple[Any, ...]] = field(default_factory=list)
    finished: list[tuple[Any, ...]] = field(default_factory=list)
    subjects: list[tuple[bytes, int]] = field(default_factory=list)
    results: list[int] = field(default_factory=list)


_PG_IDLE = 0  # libpq's PQTRANS_IDLE: no transaction open on the connection


def _pipeline_supported() -> bool:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - a PostgreSQL engine implies psycopg
        return False
    return bool(psycopg.Pipeline.is_supported())


def _parts_of(op: _Op) -> EntryParts | None:
    if isinstance(op, _IndexOp | _Barrier):
        return None
    entry = op.entry()
    if "index" in entry or not all(k.isascii() for k in entry):
        return None  # the writer serializes it whole (and refuses what must be refused) as before
    return EntryParts(entry, op.plan if isinstance(op, DisclosureStart) else None)


class _Pending:
    __slots__ = ("done", "error", "future", "op", "parts", "queued_at", "result", "subjects", "waited")

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
        self.queued_at = time.perf_counter()  # the write latency metric: queue wait + group commit

    def settle(self) -> None:
        """Wake the waiter: a thread on ``done``, or a coroutine through its loop (from the writer thread)."""
        if not isinstance(self.op, _Barrier):  # a flush writes nothing: it would pull the latency down
            metrics.LOG_WRITE_SECONDS.observe(time.perf_counter() - self.queued_at)
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
            "subjects_unnest": "INSERT INTO subject_index (subject_hash, disclosure_seq) "
            "SELECT * FROM unnest(%s::bytea[], %s::bigint[]) ON CONFLICT DO NOTHING",
        }
        # psycopg's pipeline mode (libpq >= 14): a group commit in three round trips (see _commit_pipelined)
        self._pipelined = not self._is_sqlite and engine.dialect.driver == "psycopg" and _pipeline_supported()

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
        subjects: Mapping[str, Any] | None = None,
    ) -> int | None:
        op = make_finish(disclosure_id, status, rows, nbytes, sha256, error, details, subjects)
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
        metrics.LOG_QUEUE_DEPTH.set(self._queue.qsize())

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
            metrics.LOG_QUEUE_DEPTH.set(self._queue.qsize())
            started = time.perf_counter()
            with tracing.span("disclosure_log.commit", {"dxg.entries": len(group)}):
                self._commit_group(group)
            metrics.LOG_COMMIT_SECONDS.observe(time.perf_counter() - started)

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
            results = self._commit_pipelined(group) if self._pipelined else self._commit_plain(group)
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

    def _commit_plain(self, group: list[_Pending]) -> list[int]:
        """SQLite (and a PostgreSQL driver without pipeline mode): one statement after the other."""
        with self._engine.begin() as conn:
            size, border = self._lock_head(conn)
            appender = TreeAppender(size, border)
            rows = self._group_rows(group, appender)
            # Driver-level executemany: SQLAlchemy's per-row parameter processing costs more than the inserts.
            # Starts before finishes: a finish may follow its start in the same group.
            for statement in ("entries", "nodes", "started", "finished", "subjects"):
                self._write_rows(conn, statement, getattr(rows, statement))
            conn.execute(
                sa.update(_head)
                .where(_head.c.id == 1)
                .values(size=appender.size, border=json.dumps([n.hash.hex() for n in appender.border]))
            )
            if self._checkpoint_due(appender.size):
                self._write_checkpoint(conn, appender.size, appender.root())
        return rows.results

    def _commit_pipelined(self, group: list[_Pending]) -> list[int]:
        """PostgreSQL in psycopg's pipeline mode: a group commit in three round trips instead of ten or eleven.

        1. the pool's liveness ping (``pool_pre_ping``, kept: a dead connection is replaced before the group);
        2. ``BEGIN`` and the locking read of the head (``SELECT ... FOR UPDATE``: the row lock that serializes every
           process appending to this database, then the head as the lock holder sees it);
        3. every insert of the group, the new head and ``COMMIT``, sent together with one sync at the end.
        The transaction is spelled out (``BEGIN`` ... ``COMMIT`` on a connection in autocommit mode) because
        psycopg's implicit ``BEGIN`` is a round trip of its own. The server runs the statements in order and an
        error in any skips the rest, ``COMMIT`` included: the group commits whole or not at all, the error is raised
        at the sync, and the failed transaction is rolled back before the connection goes back to the pool. When a
        checkpoint is due it is written after the group's statements, before the ``COMMIT`` (an extra round trip
        every ``checkpoint_every`` entries or ``checkpoint_interval_s`` seconds).
        """
        with self._engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # reset by the pool on return
            raw: Any = conn.connection.driver_connection  # the psycopg connection under SQLAlchemy's
            try:
                with raw.pipeline(), raw.cursor() as cur:
                    cur.execute("BEGIN")
                    cur.execute("SELECT size, border FROM log_head WHERE id = 1 FOR UPDATE")
                    size, border_json = cur.fetchone()
                    appender = TreeAppender(int(size), [bytes.fromhex(h) for h in json.loads(border_json)])
                    rows = self._group_rows(group, appender)
                    # Starts before finishes: a finish may follow its start in the same group.
                    for statement in ("entries", "nodes", "started", "finished"):
                        if getattr(rows, statement):
                            cur.executemany(self._sql[statement], getattr(rows, statement))
                    if rows.subjects:
                        # One statement for the group: an executemany would run one INSERT per row on the server.
                        hashes, seqs = zip(*rows.subjects, strict=True)
                        cur.execute(self._sql["subjects_unnest"], (list(hashes), list(seqs)))
                    cur.execute(
                        "UPDATE log_head SET size = %s, border = %s WHERE id = 1",
                        (appender.size, json.dumps([n.hash.hex() for n in appender.border])),
                    )
                    if self._checkpoint_due(appender.size):
                        self._write_checkpoint(conn, appender.size, appender.root())
                    cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):  # a broken connection: the pool discards it anyway
                    if raw.pgconn.transaction_status != _PG_IDLE:
                        raw.execute("ROLLBACK")
                raise
        return rows.results

    def _group_rows(self, group: list[_Pending], appender: TreeAppender) -> _GroupRows:
        """The rows a group writes, its entries appended to ``appender`` (indexes from the locked head)."""
        rows = _GroupRows()
        for pending in group:
            op = pending.op
            if isinstance(op, _IndexOp):
                rows.subjects.extend(zip(op.subject_hashes, itertools.repeat(op.disclosure_seq)))
                rows.results.append(op.disclosure_seq)
                continue
            if isinstance(op, _Barrier):
                rows.results.append(0)
                continue
            seq = appender.size
            parts = pending.parts
            body = parts.body(seq) if parts is not None else canonical_json({"index": seq, **op.entry()})
            leaf = hashlib.sha256(b"\x00" + body).digest()
            rows.nodes.extend((n.level, n.index, n.hash.hex()) for n in appender.append(leaf))
            rows.entries.append(
                (
                    seq,
                    entry_kind(op),
                    op.disclosure_id,
                    body.decode("utf-8"),
                    leaf.hex(),
                    self._db_time(entry_time(op)),
                )
            )
            if isinstance(op, DisclosureStart):
                rows.started.append(self._started_row(op, seq, parts.plan if parts is not None else None))
                rows.subjects.extend(zip(pending.subjects, itertools.repeat(seq)))
            elif isinstance(op, DisclosureFinish):
                rows.finished.append(self._finished_row(op, seq))
            rows.results.append(seq)
        # In key order: the index is keyed by random hashes, and sorted inserts walk its B-tree once instead of
        # jumping to a random page per row (a 16k-row group: 4x less time in the writer).
        rows.subjects.sort()
        return rows

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
            conn.exec_driver_sql(self._sql["subjects_unnest"], (list(hashes), list(seqs)))
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


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
