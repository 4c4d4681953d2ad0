"""The single-record floor: a minimal uvicorn + Starlette app doing one durable insert per request, no gateway.

Benchmark only (never deployed). The records benchmark drives it with the same wrk script, clients, duration and
CPU pinning as the gateway, so the gateway's figure can be read as a ratio to what this machine, this HTTP stack and
this database allow for "one durable write per request" in the same run.

What "one durable insert per request" means here (the choice, documented in docs/performance.md):

- SQLite: the gateway's own durability settings (gateway.db.engine: WAL, synchronous=FULL, busy_timeout 10 s), one
  ``INSERT`` and one ``COMMIT`` per request on a connection per worker thread; the commit returns after the WAL is
  fsynced, as the gateway's group commit does. No group commit: the floor is the naive durable design.
- PostgreSQL: one ``INSERT`` in its own transaction per request (autocommit, the server's default
  synchronous_commit=on), on a connection per worker thread; psycopg directly (no SQLAlchemy pool).

The response is a small JSON document of the size of a record. The app is configured by environment variables
(uvicorn starts worker processes from an import string): ``DXG_FLOOR_URL`` is ``sqlite:///path`` or a
``postgresql://`` URL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["app", "prepare"]

_TABLE = (
    "CREATE TABLE IF NOT EXISTS floor_writes (id INTEGER PRIMARY KEY {auto}, path TEXT NOT NULL, at DOUBLE PRECISION)"
)
_local = threading.local()


def _url() -> str:
    return os.environ.get("DXG_FLOOR_URL", "sqlite:///floor.db")


def _connect(url: str) -> Any:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10, isolation_level=None)
        # the gateway's pragmas (gateway/db/engine.py), so the floor is exactly as durable
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn
    import psycopg

    return psycopg.connect(url, autocommit=True)


def prepare(url: str) -> None:
    """Create the floor's table (once, before the server starts)."""
    conn = _connect(url)
    try:
        auto = "" if url.startswith("sqlite") else "GENERATED ALWAYS AS IDENTITY"
        conn.execute(_TABLE.format(auto=auto))
        if not url.startswith("sqlite"):
            conn.execute("TRUNCATE floor_writes")
    finally:
        conn.close()


def _insert(path: str) -> None:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = _connect(_url())
    if isinstance(conn, sqlite3.Connection):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO floor_writes (path, at) VALUES (?, ?)", (path, time.time()))
        conn.execute("COMMIT")
    else:
        conn.execute("INSERT INTO floor_writes (path, at) VALUES (%s, %s)", (path, time.time()))


async def record(request: Request) -> Response:
    path = request.url.path
    await run_in_threadpool(_insert, path)
    body = json.dumps({"child_id": path[-9:], "birth_date": "2021-03-04", "gender": "F", "status": "enrolled"})
    return Response(body, media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", record)])
