"""The gateway's own database: principals, API keys, wrapped keys, the disclosure log.

SQLite is the embedded default; PostgreSQL is the production store (one database for any number of stateless gateway
processes). Tables are declared with SQLModel; hot paths use SQLAlchemy Core on the same tables.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

__all__ = [
    "ApiKeyRow",
    "CheckpointRow",
    "DisclosureRow",
    "KeyTombstoneRow",
    "LogEntryRow",
    "LogHeadRow",
    "LogNodeRow",
    "PrincipalRow",
    "SubjectIndexRow",
    "WrappedKeyRow",
    "bound_round_trips",
    "create_gateway_engine",
    "init_schema",
    "utcnow",
]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PrincipalRow(SQLModel, table=True):
    __tablename__ = "principals"
    name: str = Field(primary_key=True, max_length=64)
    roles: str = Field(max_length=256)  # comma-separated, from requester, compliance, admin, approver
    display_name: str = Field(default="", max_length=256)
    created_at: dt.datetime = Field(default_factory=utcnow)
    disabled: bool = Field(default=False)


class ApiKeyRow(SQLModel, table=True):
    __tablename__ = "api_keys"
    key_id: str = Field(primary_key=True, max_length=32)
    principal: str = Field(foreign_key="principals.name", index=True, max_length=64)
    secret_hash: str = Field(max_length=128)
    created_at: dt.datetime = Field(default_factory=utcnow)
    revoked_at: dt.datetime | None = None


class WrappedKeyRow(SQLModel, table=True):
    __tablename__ = "wrapped_keys"
    owner: str = Field(primary_key=True, max_length=200)
    version: int = Field(primary_key=True)
    wrapped: str  # keys.WrappedKey.to_json(): AES-GCM ciphertext, never the key itself
    created_at: dt.datetime = Field(default_factory=utcnow)


class KeyTombstoneRow(SQLModel, table=True):
    """An owner whose keys were destroyed (crypto-shredding): it can never get a key again."""

    __tablename__ = "key_tombstones"
    owner: str = Field(primary_key=True, max_length=200)
    destroyed_at: dt.datetime = Field(default_factory=utcnow)
    records: int = Field(default=0)  # how many wrapped key versions were deleted


class LogHeadRow(SQLModel, table=True):
    """One row: the size of the log and the right border of its Merkle tree (hex hashes, JSON list).

    Appenders lock this row, which serialises index assignment across every process on one database; the border
    lets each append compute the new tree nodes without reading the tree.
    """

    __tablename__ = "log_head"
    id: int = Field(primary_key=True)
    size: int = Field(default=0, sa_type=sa.BigInteger)
    border: str = Field(default="[]")


class LogNodeRow(SQLModel, table=True):
    """Hashes of the complete (perfect) subtrees of the log's Merkle tree; level 0 are the leaf hashes."""

    __tablename__ = "log_nodes"
    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True, sa_type=sa.BigInteger)
    hash: str = Field(max_length=64)


class CheckpointRow(SQLModel, table=True):
    """Signed tree heads (C2SP tlog-checkpoint notes), kept forever."""

    __tablename__ = "log_checkpoints"
    size: int = Field(primary_key=True, sa_type=sa.BigInteger)
    root: str = Field(max_length=64)
    note: str
    created_at: dt.datetime = Field(default_factory=utcnow)


class SubjectIndexRow(SQLModel, table=True):
    """Which disclosure included which subject: a keyed hash of the subject id, never the id itself."""

    __tablename__ = "subject_index"
    # SQLite: the primary key is the table (no separate rowid b-tree): half the writes per indexed subject.
    __table_args__ = {"sqlite_with_rowid": False}
    subject_hash: bytes = Field(primary_key=True, sa_type=sa.LargeBinary(16))
    disclosure_seq: int = Field(primary_key=True, sa_type=sa.BigInteger)


class LogEntryRow(SQLModel, table=True):
    """Append-only leaves of the disclosure log (canonical JSON); nothing updates or deletes them."""

    __tablename__ = "log_entries"
    seq: int = Field(primary_key=True, sa_type=sa.BigInteger)
    kind: str = Field(max_length=64)
    disclosure_id: str | None = Field(default=None, index=True, max_length=64)
    body: str
    leaf_hash: str = Field(max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)


class DisclosureRow(SQLModel, table=True):
    """Queryable view of a disclosure; its authoritative history is the pair of log entries (started, finished)."""

    __tablename__ = "disclosures"
    __table_args__ = (sa.Index("ix_disclosures_agreement_started", "agreement_id", "started_at"),)
    id: str = Field(primary_key=True, max_length=64)
    request_id: str = Field(max_length=64)
    principal: str = Field(index=True, max_length=64)
    agreement_id: str = Field(max_length=64)
    agreement_version: int
    agreement_digest: str = Field(max_length=80)
    approved_by: str = Field(max_length=256)
    legal_basis: str
    purpose: str = Field(index=True, max_length=64)
    operation: str = Field(max_length=32)
    status: str = Field(index=True, max_length=16)  # started | completed | aborted | failed
    started_at: dt.datetime = Field(index=True)
    finished_at: dt.datetime | None = None
    rows: int = Field(default=0)
    bytes: int = Field(default=0)
    sha256: str | None = Field(default=None, max_length=64)
    start_seq: int = Field(sa_type=sa.BigInteger, unique=True)
    finish_seq: int | None = Field(default=None, sa_type=sa.BigInteger)
    plan: str  # canonical JSON of the release plan description
    error: str | None = Field(default=None, max_length=256)
    details: str | None = None  # canonical JSON of operation-specific facts (suppression counts, alerts...)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; synchronous=FULL makes each committed log entry durable
    # before the response starts (an audit log that loses its last entries on power loss is not one).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _bounded_connection_class(seconds: float) -> type[Any] | None:
    import inspect

    import psycopg
    from psycopg import errors

    found: type[BaseException] | None = getattr(errors, "_WaitTimeout", None)
    if found is None or "timeout" not in inspect.signature(psycopg.Connection.wait).parameters:
        return None  # a psycopg without bounded waits
    wait_timeout: type[BaseException] = found

    class BoundedConnection(psycopg.Connection):
        def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("timeout") is None and len(args) < 2:  # unless the caller bounds this wait itself
                kwargs["timeout"] = seconds
            try:
                return super().wait(gen, *args, **kwargs)
            except wait_timeout:
                # Mid-protocol: the connection's state is unknown, so it is closed (the pool then discards it).
                self.pgconn.finish()
                raise errors.ConnectionTimeout(
                    f"the database did not answer within {seconds:g} s (client-side timeout)"
                ) from None

    return BoundedConnection


def bound_round_trips(engine: Engine, seconds: float) -> bool:
    """Bound every PostgreSQL round trip of ``engine``'s connections: connect, statement, fetch, commit, pool ping.

    The server's ``statement_timeout`` cannot help when the statement never reaches it, or its answer never comes
    back (a stalled network path, a hung server or proxy): the client would wait forever — a request thread
    authenticating, or the log writer holding up every later entry. With this bound such a call fails after
    ``seconds`` with psycopg's ``ConnectionTimeout`` (an ``OperationalError``) and the connection is closed, so the
    pool discards it. Connections already pooled are dropped first, so that every later one is bounded. Returns
    whether the bound is in place: not on SQLite (local file locks have ``busy_timeout``), nor with a psycopg
    whose waits cannot be bounded (a warning says so).
    """
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return False
    connection_class = _bounded_connection_class(seconds)
    if connection_class is None:
        from .logconfig import get_logger

        get_logger("gateway.db").warning("database_round_trips_unbounded", reason="psycopg lacks bounded waits")
        return False

    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        # Connecting is bounded too (psycopg's own timeout, at least 2 s), unless the URL sets its own.
        cparams.setdefault("connect_timeout", max(2, math.ceil(seconds)))
        return connection_class.connect(*cargs, **cparams)

    engine.dispose()
    event.listen(engine, "do_connect", connect)
    return True


def create_gateway_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        # A pool as large as the worker threads that may read at once: a connection opened past the pool is closed
        # on return, and reopening one (with its pragmas) per request showed in profiles.
        engine = sa.create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=20,
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def init_schema(engine: Engine) -> None:
    # Modules that declare tables register them in SQLModel.metadata when imported.
    from . import (  # noqa: F401
        agreements_store,  # agreement versions
        budget,  # privacy budgets
        reidentify,  # re-identification requests and approvals
    )
    from .schema import upgrade
    from .ui import tables as _ui_tables  # noqa: F401 - dashboard sessions, verification results

    upgrade(engine)  # Alembic migrations, under a lock: safe when several processes start at once
    with engine.begin() as conn:
        exists = conn.execute(sa.select(LogHeadRow.__table__.c.id)).first()  # type: ignore[attr-defined]
        if exists is None:
            conn.execute(
                sa.insert(LogHeadRow.__table__).values(id=1, size=0, border="[]")  # type: ignore[attr-defined]
            )
