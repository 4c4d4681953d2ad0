"""Engines for the gateway database: SQLite pragmas for a durable log, bounded PostgreSQL round trips, schema setup."""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from gateway.db.tables import LogHeadRow

__all__ = ["bound_round_trips", "create_gateway_engine", "init_schema"]


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
        from gateway.applog import get_logger

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
    from gateway.db.migrate import upgrade

    upgrade(engine)  # Alembic migrations, under a lock: safe when several processes start at once
    with engine.begin() as conn:
        exists = conn.execute(sa.select(LogHeadRow.__table__.c.id)).first()  # type: ignore[attr-defined]
        if exists is None:
            conn.execute(
                sa.insert(LogHeadRow.__table__).values(id=1, size=0, border="[]")  # type: ignore[attr-defined]
            )
