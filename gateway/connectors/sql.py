"""SQL registry connector: SQLAlchemy Core, pushed-down projection and conditions, server-side streaming.

Only catalog identifiers reach the SQL text (quoted by SQLAlchemy); every value is a bound parameter.

String conditions mean the same on both dialects and in the in-memory fake: exact, case-sensitive comparison of
characters. ``prefix`` is ``substr(col, 1, n) = value`` (LIKE would be case-insensitive on SQLite and would read
``%``, ``_`` and the escape character in the value as wildcards); next to it goes a condition only there for an
index: on SQLite a BINARY range ``value <= col < successor(value)``, on PostgreSQL an escaped ``LIKE 'value%'``
(case-sensitive there; a ``text_pattern_ops`` or C-collated index serves it). On SQLite ``eq`` and ``in`` on strings
compare with ``COLLATE BINARY`` too, so a registry column declared ``COLLATE NOCASE`` does not widen them. On
PostgreSQL equality is exact under every deterministic collation (the default); a column with a nondeterministic
(case-insensitive ICU) collation would compare by it, for ``eq`` and ``prefix`` alike. On PostgreSQL
the query runs with ``stream_results`` (a named server-side cursor), so memory stays flat whatever the row count; on
SQLite rows are fetched incrementally from the cursor.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from gateway.connectors.base import Row
from gateway.connectors.sql_aggregate import run_aggregate
from gateway.db import bound_round_trips
from gateway.errors import RegistryTimeoutError, RegistryUnavailableError
from gateway.telemetry import tracing
from policies import ColumnType, ReleasePlan
from transforms.aggregate import AggregatePlan

__all__ = ["SqlConnector"]


#: Extra seconds the client waits beyond the server's statement_timeout before it gives up on a round trip itself:
#: a registry that answers at all reports its own timeout first (and keeps the connection usable).
CLIENT_GRACE_S = 1.0


def _is_timeout(exc: Exception) -> bool:
    """A statement the server cancelled (statement_timeout), or a connect or round trip the client gave up on."""
    text = str(getattr(exc, "orig", None) or exc).lower()  # the driver's message, not the SQL text
    return "timeout" in text or "canceling statement" in text


_OURS = re.compile(r"p[0-9]+")


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _successor(value: str) -> str | bytes:
    """The least string greater than every string starting with ``value``, in code point order (SQLite's BINARY
    order on UTF-8): drop trailing U+10FFFF, then step the last character (over the surrogates, which UTF-8 cannot
    hold). A value made only of U+10FFFF has no such string; an empty BLOB, which SQLite sorts after all text, is
    the bound then (the substr condition decides anyway)."""
    stem = value.rstrip("\U0010ffff")
    if not stem:
        return b""
    nxt = ord(stem[-1]) + 1
    if 0xD800 <= nxt <= 0xDFFF:
        nxt = 0xE000
    return stem[:-1] + chr(nxt)


class SqlConnector:
    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._is_sqlite = url.startswith("sqlite")
        #: SQLite: SQL text and parameter order per plan shape (see ``_sqlite_statement``)
        self._statements: dict[tuple[Any, ...], tuple[str, tuple[tuple[int, Any], ...]]] = {}
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

    def _values(self, plan: ReleasePlan) -> list[Any]:
        """The query's parameter values, in the order ``build_query`` binds them (``p0``, ``p1``, ...)."""
        out: list[Any] = []
        for flt in plan.filters:
            ctype = plan.dataset.columns[flt.column].type
            if flt.op == "in" or flt.op == "between":
                out += [self._value(ctype, v) for v in flt.value]
            elif flt.op == "prefix":
                # the index condition first (see the module docstring), then the exact one: substr(col, 1, n) = value
                if self._is_sqlite:
                    out += [flt.value, _successor(flt.value)]
                else:
                    out.append(_escape_like(flt.value) + "%")
                out += [len(flt.value), flt.value]
            elif flt.op in ("eq", "gte", "lte"):
                out.append(self._value(ctype, flt.value))
            else:
                raise ValueError(f"unknown filter operator {flt.op!r}")
        if plan.limit is not None:
            out.append(plan.limit)
        return out

    def build_query(self, plan: ReleasePlan) -> sa.Select[Any]:
        dataset = plan.dataset
        schema, _, name = dataset.table.rpartition(".")
        needed = {dataset.columns[c].source_name for c in plan.projection}
        needed |= {dataset.columns[f.column].source_name for f in plan.filters}
        table = sa.table(name, *(sa.column(c) for c in sorted(needed)), schema=schema or None)
        query = sa.select(*(table.c[dataset.columns[c].source_name] for c in plan.projection))
        values = iter(enumerate(self._values(plan)))

        def bind() -> sa.BindParameter[Any]:
            index, value = next(values)
            return sa.bindparam(f"p{index}", value)

        for flt in plan.filters:
            col: sa.ColumnElement[Any] = table.c[dataset.columns[flt.column].source_name]
            is_string = dataset.columns[flt.column].type is ColumnType.STRING
            if self._is_sqlite and is_string and flt.op in ("eq", "in"):
                # BINARY is SQLite's default: explicit, a column declared NOCASE cannot make eq case-insensitive
                col = col.collate("BINARY")
            if flt.op == "eq":
                condition = col == bind()
            elif flt.op == "in":
                condition = col.in_([bind() for _ in flt.value])
            elif flt.op == "prefix":
                if self._is_sqlite:
                    low, high = bind(), bind()
                    indexed = sa.and_(col.collate("BINARY") >= low, col.collate("BINARY") < high)
                else:
                    indexed = col.like(bind(), escape="\\")
                head: sa.ColumnElement[Any] = sa.func.substr(col, sa.literal_column("1"), bind())
                if self._is_sqlite:
                    head = head.collate("BINARY")
                condition = sa.and_(indexed, head == bind())
            elif flt.op == "gte":
                condition = col >= bind()
            elif flt.op == "lte":
                condition = col <= bind()
            else:  # between (any other operator was refused by _values)
                low, high = bind(), bind()
                condition = col.between(low, high)
            query = query.where(condition)
        # A stable order makes a repeated request return the same rows (and the same digest) for unchanged data.
        query = query.order_by(table.c[dataset.columns[dataset.subject_key].source_name])
        if plan.limit is not None:
            query = query.limit(bind())
        return query

    def _sqlite_statement(self, plan: ReleasePlan) -> tuple[str, tuple[Any, ...]]:
        """The SQL text and parameters of ``plan`` on SQLite. The text depends only on the plan's shape (columns,
        operators, how many values an ``in`` has, whether there is a limit), so it is compiled once per shape:
        building and compiling the SQLAlchemy statement cost more than reading one record."""
        dataset = plan.dataset
        shape = (
            dataset.table,
            tuple(dataset.columns[c].source_name for c in plan.projection),
            dataset.columns[dataset.subject_key].source_name,
            tuple(
                (dataset.columns[f.column].source_name, f.op, len(f.value) if f.op == "in" else 0) for f in plan.filters
            ),
            plan.limit is not None,
        )
        cached = self._statements.get(shape)
        if cached is None:
            compiled = self.build_query(plan).compile(dialect=self._engine.dialect)
            if compiled.positiontup is None:  # pragma: no cover - SQLite's paramstyle is positional
                raise RuntimeError("expected a positional paramstyle")
            # Our values are p0, p1, ... in binding order; anything SQLAlchemy adds itself (the OFFSET 0 that
            # SQLite's LIMIT comes with) keeps the value it was compiled with.
            order = tuple(
                (int(name[1:]), None) if _OURS.fullmatch(name) else (-1, compiled.params[name])
                for name in compiled.positiontup
            )
            cached = (compiled.string, order)
            if len(self._statements) >= 512:
                self._statements.clear()
            self._statements[shape] = cached
        sql, order = cached
        values = self._values(plan)
        return sql, tuple(values[i] if i >= 0 else fixed for i, fixed in order)

    def stream(self, plan: ReleasePlan, *, batch_rows: int) -> Iterator[list[Row]]:
        # The span covers the query until its first rows can be read (the batches are read later, by the caller).
        with tracing.span("registry.query", {"dxg.dataset": plan.dataset.name, "dxg.batch_rows": batch_rows}):
            return self._stream(plan, batch_rows)

    def _stream(self, plan: ReleasePlan, batch_rows: int) -> Iterator[list[Row]]:
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
                # convert): a third of an extract's fetch time.
                sql, params = self._sqlite_statement(plan)
                try:
                    raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
                    cursor = raw.execute(sql, params)
                except sqlite3.Error as exc:  # the driver's own error: nothing in between wraps it
                    conn.close()
                    if _is_timeout(exc) or "locked" in str(exc).lower():
                        raise RegistryTimeoutError("the registry query exceeded its time limit") from exc
                    raise RegistryUnavailableError("the registry query failed") from exc
                return _cursor_batches(conn, cursor, batch_rows)
            result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(self.build_query(plan))
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


def _cursor_batches(conn: sa.Connection, cursor: sqlite3.Cursor, batch_rows: int) -> Iterator[list[Row]]:
    try:
        while batch := cursor.fetchmany(batch_rows):
            yield batch  # a list of plain tuples
    except sqlite3.Error as exc:  # the driver's own errors: SQLAlchemy does not wrap reads of the raw cursor
        if _is_timeout(exc) or "locked" in str(exc).lower():
            raise RegistryTimeoutError("the registry query exceeded its time limit") from exc
        raise RegistryUnavailableError("the registry stopped answering during the query") from exc
    finally:
        cursor.close()
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
