"""SQL registry connector: SQLAlchemy Core, pushed-down projection and conditions, server-side streaming.

Only catalog identifiers reach the SQL text (quoted by SQLAlchemy); every value is a bound parameter. On PostgreSQL
the query runs with ``stream_results`` (a named server-side cursor), so memory stays flat whatever the row count; on
SQLite rows are fetched incrementally from the cursor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from policies import ColumnType, Filter, ReleasePlan
from transforms.aggregate import AggregatePlan

from ..db import bound_round_trips
from ..errors import RegistryTimeoutError, RegistryUnavailableError
from .base import Row
from .sql_aggregate import run_aggregate

__all__ = ["SqlConnector"]


#: Extra seconds the client waits beyond the server's statement_timeout before it gives up on a round trip itself:
#: a registry that answers at all reports its own timeout first (and keeps the connection usable).
CLIENT_GRACE_S = 1.0


def _is_timeout(exc: Exception) -> bool:
    """A statement the server cancelled (statement_timeout), or a connect or round trip the client gave up on."""
    text = str(getattr(exc, "orig", None) or exc).lower()  # the driver's message, not the SQL text
    return "timeout" in text or "canceling statement" in text


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlConnector:
    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._is_sqlite = url.startswith("sqlite")
        if self._is_sqlite:
            # Read-only access to the registry: the gateway never writes to it.
            path = url.removeprefix("sqlite:///")
            creator_url = f"file:{path}?mode=ro" if path and not path.startswith(":") else path
            self._engine: Engine = sa.create_engine(
                "sqlite://",
                creator=lambda: _sqlite_ro(creator_url, timeout_s),
                poolclass=sa.pool.QueuePool,
                # as many as anyio's worker threads (40): a connection per concurrent request, none re-opened
                pool_size=40,
            )
        else:
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            timeout_ms = int(timeout_s * 1000)
            self._engine = sa.create_engine(
                url,
                pool_pre_ping=True,
                connect_args={
                    "connect_timeout": max(1, int(timeout_s)),
                    "options": f"-c statement_timeout={timeout_ms} -c default_transaction_read_only=on",
                },
            )
            # statement_timeout needs a server that hears the statement; a stalled network path or a hung server
            # would otherwise hold the request (and the pool's ping) forever.
            bound_round_trips(self._engine, timeout_s + CLIENT_GRACE_S)

    @property
    def engine(self) -> Engine:
        return self._engine

    def _value(self, column_type: ColumnType, value: Any) -> Any:
        # The demo registry (SQLite) stores dates as ISO text, which compares correctly as text; PostgreSQL has a
        # real date type and gets date objects.
        if self._is_sqlite and isinstance(value, dt.date):
            return value.isoformat()
        if self._is_sqlite and isinstance(value, bool):
            return int(value)
        return value

    def _condition(self, plan: ReleasePlan, table: sa.TableClause, flt: Filter) -> sa.ColumnElement[bool]:
        column = plan.dataset.columns[flt.column]
        col = table.c[column.source_name]
        value = flt.value
        if flt.op == "eq":
            return col == sa.bindparam(None, self._value(column.type, value))
        if flt.op == "in":
            return col.in_([self._value(column.type, v) for v in value])
        if flt.op == "prefix":
            return col.like(_escape_like(value) + "%", escape="\\")
        if flt.op == "gte":
            return col >= sa.bindparam(None, self._value(column.type, value))
        if flt.op == "lte":
            return col <= sa.bindparam(None, self._value(column.type, value))
        if flt.op == "between":
            low, high = value
            return col.between(self._value(column.type, low), self._value(column.type, high))
        raise ValueError(f"unknown filter operator {flt.op!r}")

    def build_query(self, plan: ReleasePlan) -> sa.Select[Any]:
        dataset = plan.dataset
        schema, _, name = dataset.table.rpartition(".")
        needed = {dataset.columns[c].source_name for c in plan.projection}
        needed |= {dataset.columns[f.column].source_name for f in plan.filters}
        table = sa.table(name, *(sa.column(c) for c in sorted(needed)), schema=schema or None)
        query = sa.select(*(table.c[dataset.columns[c].source_name] for c in plan.projection))
        for flt in plan.filters:
            query = query.where(self._condition(plan, table, flt))
        # A stable order makes a repeated request return the same rows (and the same digest) for unchanged data.
        query = query.order_by(table.c[dataset.columns[dataset.subject_key].source_name])
        if plan.limit is not None:
            query = query.limit(plan.limit)
        return query

    def stream(self, plan: ReleasePlan, *, batch_rows: int) -> Iterator[list[Row]]:
        query = self.build_query(plan)
        try:
            conn = self._engine.connect()
        except OperationalError as exc:
            if _is_timeout(exc):  # it accepted the connection but did not answer in time
                raise RegistryTimeoutError("the registry did not answer within its time limit") from exc
            raise RegistryUnavailableError("the registry database is not reachable") from exc
        try:
            if self._is_sqlite:
                # SQLite's cursor already steps through the result as it is read, and reading the DBAPI cursor
                # directly skips SQLAlchemy's Row objects (the columns are untyped here, so there is nothing to
                # convert): a third of an extract's fetch time. No stream_results: its strategy prefetches a row.
                return _cursor_batches(conn, conn.execute(query), batch_rows)
            result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(query)
        except OperationalError as exc:
            conn.close()
            if _is_timeout(exc):
                raise RegistryTimeoutError("the registry query exceeded its time limit") from exc
            raise RegistryUnavailableError("the registry query failed") from exc
        except SQLAlchemyError as exc:
            conn.close()
            raise RegistryUnavailableError("the registry query failed") from exc
        return _batches(conn, result, batch_rows)

    def aggregate(self, plan: AggregatePlan) -> list[Row] | None:
        """GROUP BY in the registry over the same scoped query as ``stream``; ``None`` when not expressible."""
        return run_aggregate(self._engine, self.build_query(plan.release), plan)

    def ping(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise RegistryUnavailableError("the registry database is not reachable") from exc

    def close(self) -> None:
        self._engine.dispose()


def _sqlite_ro(uri: str, timeout_s: float) -> Any:
    import sqlite3

    conn = sqlite3.connect(uri, uri=uri.startswith("file:"), timeout=timeout_s, check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    return conn


def _cursor_batches(conn: sa.Connection, result: sa.CursorResult[Any], batch_rows: int) -> Iterator[list[Row]]:
    import sqlite3

    cursor = result.cursor
    try:
        while batch := cursor.fetchmany(batch_rows):
            yield batch  # type: ignore[misc]  # sqlite3 returns a list of plain tuples
    except sqlite3.Error as exc:  # the driver's own errors: SQLAlchemy does not wrap reads of the raw cursor
        if _is_timeout(exc) or "locked" in str(exc).lower():
            raise RegistryTimeoutError("the registry query exceeded its time limit") from exc
        raise RegistryUnavailableError("the registry stopped answering during the query") from exc
    finally:
        result.close()
        conn.close()


def _batches(conn: sa.Connection, result: sa.CursorResult[Any], batch_rows: int) -> Iterator[list[Row]]:
    try:
        for partition in result.partitions(batch_rows):
            yield [tuple(row) for row in partition]
    except OperationalError as exc:
        if _is_timeout(exc):
            raise RegistryTimeoutError("the registry query exceeded its time limit") from exc
        raise RegistryUnavailableError("the registry stopped answering during the query") from exc
    finally:
        result.close()
        conn.close()
