"""Fault tests with real processes: a TCP proxy between the gateway and PostgreSQL stalls or drops the connection.

``StallingProxy`` forwards bytes between the gateway and PostgreSQL. ``pause()`` stops forwarding (the peer's
round trips hang: a stalled network path or a hung server), ``kill()`` closes every connection and stops listening
(the database is gone), ``start()`` listens again on the same port. The gateways run as ``gateway serve`` processes
with ``registry_timeout_s`` / ``audit_write_timeout_s`` of 2 s; their output goes to the whole-run log scan.

What a stall costs: every PostgreSQL round trip is bounded on the client side (``gateway.db.bound_round_trips``;
the registry's bound is its statement timeout + 1 s, so a registry that answers reports its own timeout first). A
pooled connection's ping that stalls is followed by a reconnect that must time out as well, so a request fails
within about two bounds.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from gateway.cli.main import main
from gateway.errors import ConfigError
from gateway.settings import load_settings
from policies import Catalog
from tests import _logscan

TIMEOUT_S = 2
#: a stalled registry: the pooled connection's ping (bound: timeout + 1 s), then a reconnect (connect_timeout,
#: at least 2 s), plus slack for a loaded machine
REGISTRY_BOUND_S = (TIMEOUT_S + 1) + max(2, TIMEOUT_S) + 2
#: a stalled gateway database: the ping (bound: audit_write_timeout_s), then a reconnect, plus slack
STATE_BOUND_S = TIMEOUT_S + max(2, TIMEOUT_S) + 2
#: a refused connection or a lock-held statement fails this fast (plus the timeout, for the latter)
FAST_S = 2.0
SLACK_S = 2.0
ROW_KEYS = frozenset({"child_id", "national_id", "name", "birth_date", "guardian_phone", "student_number"})

T = TypeVar("T")


class StallingProxy:
    """A TCP forwarder that can stop forwarding (``pause``) and drop everything (``kill``)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._forwarding = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        """Listen (again, on the same port after ``kill``) and forward."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._stopped = stopped = threading.Event()
        self._listener = listener
        self._forwarding.set()
        threading.Thread(target=self._accept, args=(listener, stopped), daemon=True).start()

    def pause(self) -> None:
        """Stop forwarding: bytes stay where they are, new connections wait in the backlog."""
        self._forwarding.clear()

    def resume(self) -> None:
        self._forwarding.set()

    def kill(self) -> None:
        """Close every connection (both sides see it at once) and stop listening."""
        self._stopped.set()
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            listener.close()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _wait_forwarding(self, stopped: threading.Event) -> bool:
        while not self._forwarding.wait(0.05):
            if stopped.is_set():
                return False
        return not stopped.is_set()

    def _accept(self, listener: socket.socket, stopped: threading.Event) -> None:
        while self._wait_forwarding(stopped):
            try:
                ready, _, _ = select.select([listener], [], [], 0.05)
                if not ready or not self._forwarding.is_set():
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if stopped.is_set():
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target, stopped), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, stopped: threading.Event) -> None:
        while self._wait_forwarding(stopped):
            try:
                ready, _, _ = select.select([source], [], [], 0.05)
                if not ready:
                    continue
                data = source.recv(65536)
            except (OSError, ValueError):
                return
            if not data:
                break
            # Paused between reading and writing: hold the bytes until forwarding resumes.
            if not self._wait_forwarding(stopped):
                return
            try:
                target.sendall(data)
            except OSError:
                return
        with suppress(OSError):
            target.shutdown(socket.SHUT_WR)


# -- helpers --------------------------------------------------------------------------------------------------------
def _driver(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _address(url: str) -> tuple[str, int]:
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


def _through(url: str, proxy: StallingProxy) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def _disclosures(url: str) -> dict[str, tuple[Any, ...]]:
    """id -> (status, rows, bytes, error) of every disclosure in a gateway database."""
    engine = sa.create_engine(_driver(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, status, rows, bytes, error FROM disclosures"))
            return {r[0]: tuple(r[1:]) for r in rows}
    finally:
        engine.dispose()


def _new_disclosures(url: str, before: dict[str, tuple[Any, ...]], *, count: int) -> list[tuple[Any, ...]]:
    """The disclosures added since ``before`` once there are ``count`` of them and none is still 'started'."""
    deadline = time.monotonic() + 10
    while True:
        new = [state for key, state in _disclosures(url).items() if key not in before]
        if (len(new) >= count and all(s[0] != "started" for s in new)) or time.monotonic() > deadline:
            return sorted(new, key=repr)
        time.sleep(0.1)


@contextmanager
def _holding(url: str, statement: str) -> Iterator[None]:
    """Run ``statement`` in a transaction on a direct connection and keep the transaction (and its locks) open."""
    engine = sa.create_engine(_driver(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()


def _assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].endswith("/" + slug)
    assert not ROW_KEYS & set(body)  # a problem, never data


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("faults") / "deploy"
    assert main(["demo", "--rows", "2000", "--data-dir", str(directory), "--no-serve"]) == 0
    _logscan.register_registry(directory / "registry.db")  # its personal data must not reach the servers' logs
    return directory


@pytest.fixture
def fresh_database(postgres_url: str) -> Iterator[Callable[[str], str]]:
    """Make dedicated PostgreSQL databases on the test server; all are dropped at the end."""
    admin = sa.create_engine(_driver(postgres_url), isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"dxg_{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def _deployment_copy(deployment: Path, tmp_path: Path, **settings: Any) -> Path:
    """A copy of the demo deployment whose gateway.yaml has ``settings``; returns the gateway.yaml."""
    directory = tmp_path / "deploy"
    shutil.copytree(deployment, directory)
    config = directory / "gateway.yaml"
    values = yaml.safe_load(config.read_text(encoding="utf-8"))
    values.update(settings)
    config.write_text(yaml.safe_dump(values), encoding="utf-8")
    return config


def _keys(directory: Path) -> dict[str, dict[str, str]]:
    entries = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))
    return {e["principal"]: {"Authorization": f"Bearer {e['api_key']}"} for e in entries}


def _enrolled_child(registry: Path) -> str:
    """A child the school-transfer agreement may look up (its row scope: enrolled or transferred out)."""
    conn = sqlite3.connect(f"file:{registry}?mode=ro", uri=True)
    try:
        child: str = conn.execute(
            "SELECT child_id FROM child_registry WHERE status = 'enrolled' ORDER BY child_id LIMIT 1"
        ).fetchone()[0]
        return child
    finally:
        conn.close()


@contextmanager
def _gateway(config: Path, request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A ``gateway serve`` process on ``config``; a client for it. Its output is handed to the log scan."""
    port = _free_port()
    output = config.parent / f"serve-{port}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DXG_DATABASE_URL", "DXG_REGISTRY_URL", "DXG_PORT")}
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=60) as client:
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        _logscan.add_external(output.read_text(encoding="utf-8", errors="replace"), f"{request.node.nodeid} (server)")


# -- settings ---------------------------------------------------------------------------------------------------------
def test_timeout_settings_are_accepted_and_bounded(tmp_path: Path) -> None:
    """The fault settings can be set in gateway.yaml (audit_write_timeout_s was refused as unknown) and are checked."""
    base = {"registry_url": "sqlite:///r.db", "database_url": "sqlite:///g.db"}
    path = tmp_path / "gateway.yaml"

    def load(**values: Any) -> Any:
        path.write_text(yaml.safe_dump({**base, **values}), encoding="utf-8")
        return load_settings(path, env={})

    settings = load(audit_write_timeout_s=2, registry_timeout_s=0.5, checkpoint_every=10, checkpoint_interval_s=1)
    assert (settings.audit_write_timeout_s, settings.registry_timeout_s) == (2.0, 0.5)
    assert (settings.checkpoint_every, settings.checkpoint_interval_s) == (10, 1.0)
    for key, bad in [
        ("audit_write_timeout_s", 0),
        ("audit_write_timeout_s", -1),
        ("audit_write_timeout_s", 601),
        ("audit_write_timeout_s", "2"),
        ("audit_write_timeout_s", True),
        ("audit_write_timeout_s", float("nan")),
        ("registry_timeout_s", 0),
        ("registry_timeout_s", float("inf")),
        ("checkpoint_every", 0),
    ]:
        with pytest.raises(ConfigError, match=key):
            load(**{key: bad})


# -- an unmapped database error, in process ---------------------------------------------------------------------------
def test_an_unmapped_gateway_database_error_is_503_not_500(
    catalog: Catalog, registry_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway-database failure where no route maps it (here the quota check) fails closed with 503, and neither
    the response nor the log shows the driver's message (it can embed SQL parameters)."""
    import anyio

    from tests.gateway.harness import build_env, sqlite_url

    env = build_env(catalog, sqlite_url(tmp_path / "gateway.db"), sqlite_url(registry_path))

    def unreachable(*_args: Any, **_kwargs: Any) -> None:
        raise sa.exc.OperationalError("SELECT 1", {"p": "param-value"}, Exception("server closed the connection"))

    monkeypatch.setattr("gateway.controls.quotas.check_quotas", unreachable)
    mark = len(_logscan.capture.chunks)

    async def lookup() -> httpx.Response:
        async with env.client() as client:
            return await client.get("/v1/agreements/school-transfer/records/C00000001", headers=env.auth("school"))

    try:
        response = anyio.run(lookup)
    finally:
        env.services.close()
        env.engine.dispose()
    _assert_problem(response, 503, "audit-unavailable")
    logged = "".join(text for _, text in _logscan.capture.chunks[mark:])
    assert "gateway_database_error" in logged
    assert "param-value" not in response.text + logged and "server closed" not in response.text + logged


# -- a stalled database, in process -----------------------------------------------------------------------------------
@pytest.mark.postgres
def test_round_trips_to_a_stalled_postgres_are_bounded(postgres_url: str) -> None:
    """gateway.db.bound_round_trips: a stalled ping, statement or connect fails instead of waiting forever."""
    from gateway.db import bound_round_trips, create_gateway_engine

    proxy = StallingProxy(_address(postgres_url))
    proxy.start()
    engine = create_gateway_engine(_through(postgres_url, proxy))
    try:
        assert bound_round_trips(engine, 1.0)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            proxy.pause()
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError, match="did not answer within 1 s"):
                conn.execute(sa.text("SELECT 2"))
            assert 0.9 <= time.monotonic() - started <= 1 + SLACK_S
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError, match="timeout"):
            engine.connect()  # a new connection: connect_timeout (psycopg waits at least 2 s)
        assert time.monotonic() - started <= 2 + SLACK_S
        proxy.resume()
        with engine.connect() as conn:  # the stalled connection was discarded; the pool recovers by itself
            assert conn.execute(sa.text("SELECT 3")).scalar() == 3
    finally:
        engine.dispose()
        proxy.kill()


# -- the registry on PostgreSQL ---------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.postgres
def test_registry_slow_stalled_dropped_and_back(
    deployment: Path, fresh_database: Callable[[str], str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from gateway.demo.pgcopy import copy_registry_to_postgres

    registry = fresh_database("faults_registry")
    copy_registry_to_postgres(deployment / "registry.db", registry)
    proxy = StallingProxy(_address(registry))
    proxy.start()
    config = _deployment_copy(
        deployment, tmp_path, registry_url=_through(registry, proxy), registry_timeout_s=TIMEOUT_S
    )
    state = f"sqlite:///{config.parent / 'gateway.db'}"
    keys = _keys(config.parent)
    child = _enrolled_child(deployment / "registry.db")
    try:
        with _gateway(config, request) as client:

            def record() -> httpx.Response:
                return client.get(f"/v1/agreements/school-transfer/records/{child}", headers=keys["receiving-school"])

            def extract() -> httpx.Response:
                return client.post(
                    # Not research: k-anonymity rightly refuses every extract of 2,000 children (31% in small classes).
                    "/v1/agreements/finance-subsidy/extract",
                    json={"limit": 5},
                    headers=keys["finance-bureau"],
                )

            # warm: a pooled registry connection, the name dictionary cached
            assert record().json()["child_id"] == child
            assert extract().status_code == 200

            # Slow: the registry answers, but a lock holds the query until its statement_timeout (server side).
            before = _disclosures(state)
            with _holding(registry, "LOCK TABLE children IN ACCESS EXCLUSIVE MODE"):
                slow, elapsed = _timed(extract)
            _assert_problem(slow, 504, "registry-timeout")
            assert TIMEOUT_S - 0.5 <= elapsed <= TIMEOUT_S + SLACK_S
            # logged before the query, finalized 'failed' with what was released: nothing
            assert _new_disclosures(state, before, count=1) == [("failed", 0, 0, "registry-timeout")]

            # Stalled: nothing comes back at all.
            proxy.pause()
            before = _disclosures(state)
            stalled_record, elapsed_record = _timed(record)
            stalled_extract, elapsed_extract = _timed(extract)
            _assert_problem(stalled_record, 504, "registry-timeout")
            _assert_problem(stalled_extract, 504, "registry-timeout")
            assert child not in stalled_record.text
            for elapsed in (elapsed_record, elapsed_extract):
                assert TIMEOUT_S - 0.5 <= elapsed <= REGISTRY_BOUND_S
            assert _new_disclosures(state, before, count=2) == [("failed", 0, 0, "registry-timeout")] * 2

            # Gone: connections closed, nothing listening.
            proxy.kill()
            before = _disclosures(state)
            gone_record, elapsed_record = _timed(record)
            gone_extract, elapsed_extract = _timed(extract)
            _assert_problem(gone_record, 502, "registry-unavailable")
            _assert_problem(gone_extract, 502, "registry-unavailable")
            assert max(elapsed_record, elapsed_extract) <= FAST_S
            assert _new_disclosures(state, before, count=2) == [("failed", 0, 0, "registry-unavailable")] * 2

            # Back: the same process serves again, no restart.
            proxy.start()
            before = _disclosures(state)
            assert record().json()["child_id"] == child
            back = extract()
            assert back.status_code == 200 and len(back.text.splitlines()) == 5
            assert [s[0] for s in _new_disclosures(state, before, count=2)] == ["completed", "completed"]
    finally:
        proxy.kill()
    assert main(["log", "verify", "--config", str(config)]) == 0


# -- the gateway's own database on PostgreSQL -------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.postgres
def test_gateway_database_stuck_stalled_dropped_and_back(
    deployment: Path,
    fresh_database: Callable[[str], str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.db.copy import copy_gateway_state

    state = fresh_database("faults_state")
    copy_gateway_state(f"sqlite:///{deployment / 'gateway.db'}", state)
    proxy = StallingProxy(_address(state))
    proxy.start()
    config = _deployment_copy(
        deployment, tmp_path, database_url=_through(state, proxy), audit_write_timeout_s=TIMEOUT_S
    )
    keys = _keys(config.parent)
    research = keys["finance-bureau"]  # research extracts of 2,000 children are refused (k-anonymity)
    try:
        with _gateway(config, request) as client, ThreadPoolExecutor(2) as background:

            def extract() -> httpx.Response:
                return client.post("/v1/agreements/finance-subsidy/extract", json={"limit": 5}, headers=research)

            def responsive() -> None:
                """While a request is stuck, the server still answers (its event loop is not blocked)."""
                health, elapsed = _timed(lambda: client.get("/healthz"))
                assert health.status_code == 200 and elapsed < 1.0

            assert extract().status_code == 200

            # A stuck audit write: another session holds the log head's row lock (as a stalled gateway process
            # holding it would). Authentication and reads work; the write-ahead entry cannot be committed.
            before = _disclosures(state)
            with _holding(state, "SELECT size FROM log_head WHERE id = 1 FOR UPDATE"):
                stuck = background.submit(_timed, extract)
                time.sleep(0.5)
                responsive()
                listing, elapsed = _timed(lambda: client.get("/v1/agreements", headers=research))
                assert listing.status_code == 200 and elapsed < 1.0  # a database read that writes no log entry
                first, elapsed = stuck.result()
                _assert_problem(first, 503, "audit-unavailable")
                assert TIMEOUT_S - 0.5 <= elapsed <= TIMEOUT_S + SLACK_S
                # the writer gave up its stuck write (client-side bound), so the next request gets its own turn
                second, elapsed = _timed(extract)
                _assert_problem(second, 503, "audit-unavailable")
                assert TIMEOUT_S - 0.5 <= elapsed <= TIMEOUT_S + SLACK_S
                time.sleep(1.0)  # the writer's bounded attempt ends shortly after the request's wait: let it
            # The writer's attempts were rolled back: the refused requests left no entry (nothing released).
            assert _disclosures(state) == before
            recovered = extract()
            assert recovered.status_code == 200 and len(recovered.text.splitlines()) == 5

            # Stalled: every round trip hangs; the request fails at its first one (authentication).
            proxy.pause()
            stalled = background.submit(_timed, extract)
            time.sleep(0.5)
            responsive()
            response, elapsed = stalled.result()
            _assert_problem(response, 503, "audit-unavailable")
            assert TIMEOUT_S - 0.5 <= elapsed <= STATE_BOUND_S

            # Gone.
            proxy.kill()
            gone, elapsed = _timed(extract)
            _assert_problem(gone, 503, "audit-unavailable")
            assert elapsed <= FAST_S

            # Back: the same process serves and logs again.
            proxy.start()
            before = _disclosures(state)
            for _ in range(2):
                back = extract()
                assert back.status_code == 200 and len(back.text.splitlines()) == 5
            assert [s[0] for s in _new_disclosures(state, before, count=2)] == ["completed", "completed"]
    finally:
        proxy.kill()
    monkeypatch.setenv("DXG_DATABASE_URL", state)
    assert main(["log", "verify", "--config", str(config)]) == 0
    engine = sa.create_engine(_driver(state), poolclass=NullPool)
    with engine.connect() as conn:
        size, top = conn.execute(sa.text("SELECT count(*), max(seq) FROM log_entries")).one()
        head = conn.execute(sa.text("SELECT size FROM log_head")).scalar_one()
    engine.dispose()
    assert size == top + 1 == head  # no gap, nothing beyond the head
    assert all(s[0] != "started" for s in _disclosures(state).values())
