"""A real HTTP registry for tests: the demo registry (read from the test's SQLite file) served as a JSON API by
Starlette under uvicorn on a loopback port, in a thread.

Records are nested like a real API's: ``guardian`` (the primary guardian), ``guardians`` (a list, primary first),
``support`` (flags), plus fields no agreement releases (``internal``, ``x_upstream_secret``). Endpoints:

* ``/children`` — cursor pagination (``cursor``/``limit`` → ``next_cursor``), filters ``child_id``, ``status``,
  ``residence_code`` by equality, honours ``fields`` (comma-separated top-level keys).
* ``/children-offset`` — offset pagination (``offset``/``limit``), a bare JSON list per page.
* ``/extra/children`` — like ``/children`` but ignores ``fields`` and every filter (a careless API).
* ``/slow/children`` — sleeps ``slow_s`` before answering.
* ``/failing/children`` — answers ``failing_status`` (while it is not None), else like ``/children``.
* ``/flaky/children`` — answers 503 to the first ``flaky_failures`` requests, then like ``/children``.
* ``/midstream/children`` — the first page is fine, every later page answers 500.
* ``/subsidies`` — the subsidy payments, flat, cursor pagination (the gateway reads its name columns too).
* ``/healthz``.

Every request must carry ``X-Registry-Key: <token>`` (401 otherwise). Requests are recorded in ``seen``.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "test-registry-token-7f3a"
SECRET_MARKER = "UPSTREAM-ONLY-"
FILTERS = ("child_id", "status", "residence_code")


def load_records(registry_path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(registry_path)
    conn.row_factory = sqlite3.Row
    try:
        children = [dict(r) for r in conn.execute("SELECT * FROM children ORDER BY child_id")]
        guardians: dict[str, list[dict[str, Any]]] = {}
        for g in conn.execute("SELECT * FROM guardians ORDER BY child_id, is_primary DESC, guardian_id"):
            guardians.setdefault(g["child_id"], []).append(
                {"name": g["name"], "relation": g["relation"], "phone": g["phone"], "national_id": g["national_id"]}
            )
        support = {
            s["child_id"]: {k: bool(s[k]) for k in ("low_income", "disability", "migrant", "left_behind")}
            for s in conn.execute("SELECT * FROM support_status")
        }
    finally:
        conn.close()
    records = []
    for child in children:
        own = guardians.get(child["child_id"], [])
        records.append(
            {
                **child,
                "guardian": own[0] if own else None,
                "guardians": own,
                "support": support.get(child["child_id"]),
                "internal": {"risk_score": 0.42, "caseworker": SECRET_MARKER + "caseworker"},
                "x_upstream_secret": SECRET_MARKER + child["child_id"][::-1],
            }
        )
    return records


class Upstream:
    def __init__(self, registry_path: Path) -> None:
        self.records = load_records(registry_path)
        conn = sqlite3.connect(registry_path)
        conn.row_factory = sqlite3.Row
        self.subsidies = [dict(r) for r in conn.execute("SELECT * FROM subsidy_payments ORDER BY payment_id")]
        conn.close()
        self.base_url = ""
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.hits: Counter[str] = Counter()
        self.failing_status: int | None = 503
        self.flaky_failures = 0
        self.slow_s = 3.0
        self.app = Starlette(
            routes=[
                Route("/healthz", self.healthz),
                Route("/subsidies", self.subsidy_payments),
                Route("/children", self.children),
                Route("/children-offset", self.children_offset),
                Route("/extra/children", self.extra),
                Route("/slow/children", self.slow),
                Route("/failing/children", self.failing),
                Route("/flaky/children", self.flaky),
                Route("/midstream/children", self.midstream),
            ]
        )

    def reset(self) -> None:
        self.seen.clear()
        self.hits.clear()
        self.failing_status = 503
        self.flaky_failures = 0

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _admit(self, request: Request) -> Response | None:
        self.hits[request.url.path] += 1
        self.seen.append((request.url.path, dict(request.query_params)))
        if request.headers.get("x-registry-key") != TOKEN:
            return JSONResponse({"error": "bad key " + SECRET_MARKER}, status_code=401)
        return None

    def _select(self, request: Request, *, careless: bool = False) -> list[dict[str, Any]]:
        rows = self.records
        if not careless:
            for name in FILTERS:
                if name in request.query_params:
                    rows = [r for r in rows if str(r[name]) == request.query_params[name]]
        return rows

    def _shape(self, request: Request, rows: list[dict[str, Any]], *, careless: bool = False) -> list[dict[str, Any]]:
        fields = request.query_params.get("fields")
        if careless or not fields:
            return rows
        keep = set(fields.split(","))
        return [{k: v for k, v in r.items() if k in keep} for r in rows]

    def _cursor_page(
        self, request: Request, *, careless: bool = False, rows: list[dict[str, Any]] | None = None
    ) -> Response:
        rows = self._select(request, careless=careless) if rows is None else rows
        start = int(request.query_params.get("cursor", "0"))
        limit = int(request.query_params.get("limit", "100"))
        page = rows[start : start + limit]
        following = start + limit if start + limit < len(rows) else None
        return JSONResponse(
            {
                "items": self._shape(request, page, careless=careless),
                "next_cursor": str(following) if following is not None else None,
                "debug": SECRET_MARKER + "page",
            },
            headers={"X-Upstream-Secret": SECRET_MARKER + "header"},
        )

    # -- endpoints -------------------------------------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        return self._admit(request) or JSONResponse({"status": "ok"})

    async def subsidy_payments(self, request: Request) -> Response:
        return self._admit(request) or self._cursor_page(request, rows=self.subsidies)

    async def children(self, request: Request) -> Response:
        return self._admit(request) or self._cursor_page(request)

    async def children_offset(self, request: Request) -> Response:
        if (denied := self._admit(request)) is not None:
            return denied
        rows = self._select(request)
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", "100"))
        return JSONResponse(self._shape(request, rows[offset : offset + limit]))

    async def extra(self, request: Request) -> Response:
        return self._admit(request) or self._cursor_page(request, careless=True)

    async def slow(self, request: Request) -> Response:
        if (denied := self._admit(request)) is not None:
            return denied
        await asyncio.sleep(self.slow_s)
        return self._cursor_page(request)

    async def failing(self, request: Request) -> Response:
        if (denied := self._admit(request)) is not None:
            return denied
        if self.failing_status is not None:
            return JSONResponse({"error": SECRET_MARKER + "stack trace"}, status_code=self.failing_status)
        return self._cursor_page(request)

    async def flaky(self, request: Request) -> Response:
        if (denied := self._admit(request)) is not None:
            return denied
        if self.hits[request.url.path] <= self.flaky_failures:
            return JSONResponse({"error": "busy"}, status_code=503)
        return self._cursor_page(request)

    async def midstream(self, request: Request) -> Response:
        if (denied := self._admit(request)) is not None:
            return denied
        if request.query_params.get("cursor", "0") != "0":
            return JSONResponse({"error": SECRET_MARKER + "crash"}, status_code=500)
        return self._cursor_page(request)


@contextmanager
def serve(upstream: Upstream) -> Iterator[str]:
    """Run ``upstream`` under uvicorn on a free loopback port; yield its base URL; stop it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(upstream.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-upstream", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test upstream did not start")
        time.sleep(0.01)
    upstream.base_url = f"http://127.0.0.1:{port}"
    try:
        yield upstream.base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
