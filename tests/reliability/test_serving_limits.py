"""Serving limits with real sockets against a real ``gateway serve`` (uvicorn, the gateway's protocol) on a free port:
half-open connections, slow bodies, too many connections, too many extracts of one key, aborts mid-body.

Every figure asserted here is a bound with slack for a shared 2-core machine; the measured values are printed
(``pytest -s``) and recorded in docs/operations.md.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.cli.main import main
from tests import _logscan

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 3
MAX_CONNECTIONS = 250
MAX_EXTRACTS = 2
SLACK_S = 3.0  # scheduling on a loaded machine: the timers are exact, the test's view of them is not
EXTRACT = "/v1/agreements/research-continuity/extract"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, directory: Path, port: int, proc: subprocess.Popen[bytes], output: Path) -> None:
        self.directory, self.port, self.proc, self.output = directory, port, proc, output
        self.base = f"http://127.0.0.1:{port}"

    def key(self) -> str:
        entries = json.loads((self.directory / "credentials.json").read_text())
        key: str = next(e["api_key"] for e in entries if "research-continuity" in e["agreements"])
        return key

    def connect(self, *, rcvbuf: int | None = None) -> socket.socket:
        sock = socket.socket()
        if rcvbuf is not None:  # before connect: the window the server may fill
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect(("127.0.0.1", self.port))
        return sock

    def log_text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("limits") / "deploy"
    assert main(["demo", "--rows", "20000", "--data-dir", str(directory), "--no-serve"]) == 0
    config = directory / "gateway.yaml"
    settings = yaml.safe_load(config.read_text())
    settings.update(
        header_timeout_s=HEADER_TIMEOUT_S,
        body_timeout_s=BODY_TIMEOUT_S,
        max_connections=MAX_CONNECTIONS,
        max_concurrent_extracts=MAX_EXTRACTS,
        batch_rows=200,  # small groups: an extract held by its client stays in its stream
    )
    config.write_text(yaml.safe_dump(settings))
    port = _free_port()
    output = directory / "serve.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DXG_DATABASE_URL", "DXG_REGISTRY_URL", "DXG_PORT")}
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli.main", "serve", "--config", str(config), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        yield Server(directory, port, proc, output)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        _logscan.add_external(output.read_text(encoding="utf-8", errors="replace"), "test_serving_limits (server)")


def _closed_within(sockets: list[socket.socket], timeout: float) -> list[float]:
    """Seconds until each socket was closed by the server (EOF or reset); inf for one still open at ``timeout``."""
    started = time.monotonic()
    closed = [float("inf")] * len(sockets)
    for s in sockets:
        s.setblocking(False)
    while time.monotonic() - started < timeout and any(c == float("inf") for c in closed):
        for i, s in enumerate(sockets):
            if closed[i] != float("inf"):
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                closed[i] = time.monotonic() - started
        time.sleep(0.05)
    return closed


def _read_response(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes; the seconds it took."""
    sock.settimeout(timeout)
    started = time.monotonic()
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        pass
    except OSError:
        pass
    return data, time.monotonic() - started


def _metric(server: Server, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{server.base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_half_open_connections_are_closed_while_requests_are_served(server: Server) -> None:
    closed_before = _metric(server, "dxg_connections_closed_total", reason="header_timeout")
    silent = [server.connect() for _ in range(100)]  # connect, send nothing
    partial = [server.connect() for _ in range(100)]  # a request head never finished (slowloris)
    for s in partial:
        s.sendall(b"GET /v1/agreements HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
    opened = time.monotonic()
    # Meanwhile a normal request is served at once.
    normal = httpx.get(f"{server.base}/v1/agreements", headers={"Authorization": f"Bearer {server.key()}"}, timeout=5)
    assert normal.status_code == 200
    served_after = time.monotonic() - opened
    closed = _closed_within(silent + partial, HEADER_TIMEOUT_S + SLACK_S + 5)
    print(
        f"\n200 half-open: normal request in {served_after:.3f} s; closed after {min(closed):.2f}-{max(closed):.2f} s"
    )
    assert all(c <= HEADER_TIMEOUT_S + SLACK_S for c in closed), sorted(closed)[-5:]
    assert min(closed) >= HEADER_TIMEOUT_S - 0.5  # not closed early either
    moved = _metric(server, "dxg_connections_closed_total", reason="header_timeout") - closed_before
    assert moved == 200
    for s in silent + partial:
        s.close()


def test_a_head_started_on_a_kept_alive_connection_is_timed_too(server: Server) -> None:
    sock = server.connect()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # the next request's head, never finished
    (closed,) = _closed_within([sock], HEADER_TIMEOUT_S + SLACK_S + 5)
    print(f"\nkept-alive then slow head: closed after {closed:.2f} s")
    assert closed <= HEADER_TIMEOUT_S + SLACK_S
    sock.close()


def _dribble(sock: socket.socket, interval: float, stop: threading.Event) -> None:
    """One byte every ``interval`` seconds until the server closes or the test stops."""
    while not stop.is_set():
        try:
            sock.sendall(b"x")
        except OSError:
            return
        stop.wait(interval)


def _slow_body(server: Server, head: str) -> tuple[bytes, float]:
    """Send ``head``, then a body at one byte per two seconds (as the issue's attacker did); what the server sent
    until it closed the connection, and when it closed it (seconds after the head)."""
    sock = server.connect()
    sock.sendall(head.encode())
    stop = threading.Event()
    dribbler = threading.Thread(target=_dribble, args=(sock, 2.0, stop), daemon=True)
    dribbler.start()
    try:
        return _read_response(sock, BODY_TIMEOUT_S + 2 + SLACK_S + 5)
    finally:
        stop.set()
        dribbler.join(5)
        sock.close()


def test_a_slow_body_gets_408_and_the_connection_is_closed(server: Server) -> None:
    got, elapsed = _slow_body(
        server,
        f"POST {EXTRACT} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {server.key()}\r\n"
        "Content-Type: application/json\r\nContent-Length: 40\r\n\r\n",
    )
    print(f"\nslow body: {got[:12]!r} and closed after {elapsed:.2f} s")
    assert got.startswith(b"HTTP/1.1 408"), got[:200]
    head_text, _, body = got.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head_text and b"connection: close" in head_text.lower()
    assert json.loads(body)["type"].endswith("/request-timeout")
    assert BODY_TIMEOUT_S - 0.5 <= elapsed <= BODY_TIMEOUT_S + SLACK_S


def test_a_slow_body_the_app_never_reads_is_cut_off_too(server: Server) -> None:
    """No key: 401 before the body is read. The client keeps dribbling; the protocol's backstop closes it."""
    got, elapsed = _slow_body(server, f"POST {EXTRACT} HTTP/1.1\r\nHost: gateway\r\nContent-Length: 1000\r\n\r\n")
    print(f"\nunread slow body: {got[:12]!r} and closed after {elapsed:.2f} s")
    assert got.startswith(b"HTTP/1.1 401"), got[:200]
    assert BODY_TIMEOUT_S + 2 - 0.5 <= elapsed <= BODY_TIMEOUT_S + 2 + SLACK_S


def test_past_max_connections_a_problem_503_then_served_again(server: Server) -> None:
    held = [server.connect() for _ in range(MAX_CONNECTIONS + 10)]
    time.sleep(0.3)
    refused = httpx.get(f"{server.base}/healthz", timeout=5)
    print(f"\n{len(held)} idle connections: /healthz -> {refused.status_code}")
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/over-capacity") and refused.headers["retry-after"] == "1"
    _closed_within(held, HEADER_TIMEOUT_S + SLACK_S + 5)  # the header timeout frees them
    for s in held:
        s.close()
    assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200


def _start_extract(server: Server) -> tuple[socket.socket, bytes]:
    """An extract whose client reads its head and nothing more: the server's stream waits on the socket."""
    sock = server.connect(rcvbuf=4096)
    body = b"{}"
    sock.sendall(
        (
            f"POST {EXTRACT} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {server.key()}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    sock.settimeout(60)
    first = sock.recv(4096)
    return sock, first


def test_one_key_past_max_concurrent_extracts_gets_429_with_retry_after(server: Server) -> None:
    held = [_start_extract(server) for _ in range(MAX_EXTRACTS)]
    for _, first in held:
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
    time.sleep(0.5)
    assert _metric(server, "dxg_extracts_active") == MAX_EXTRACTS
    extra = httpx.post(
        f"{server.base}{EXTRACT}", headers={"Authorization": f"Bearer {server.key()}"}, json={}, timeout=30
    )
    print(
        f"\n{MAX_EXTRACTS} extracts held, one more: {extra.status_code} Retry-After {extra.headers.get('retry-after')}"
    )
    assert extra.status_code == 429
    assert extra.headers["content-type"] == "application/problem+json"
    assert extra.json()["type"].endswith("/too-many-concurrent-extracts") and int(extra.headers["retry-after"]) >= 1
    # Other requests of the same key are not held back, and a slot frees when an extract ends (here: cut).
    assert (
        httpx.get(f"{server.base}/v1/agreements", headers={"Authorization": f"Bearer {server.key()}"}).status_code
        == 200
    )
    for sock, _ in held:
        sock.close()
    deadline = time.monotonic() + 30
    while _metric(server, "dxg_extracts_active") > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _metric(server, "dxg_extracts_active") == 0
    again = httpx.post(
        f"{server.base}{EXTRACT}", headers={"Authorization": f"Bearer {server.key()}"}, json={"limit": 5}, timeout=30
    )
    assert again.status_code == 200, again.text


def test_an_abort_mid_body_is_logged_never_a_500_nor_a_traceback(server: Server) -> None:
    before = server.log_text()
    for _ in range(5):
        sock = server.connect()
        sock.sendall(
            (
                f"POST {EXTRACT} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {server.key()}\r\n"
                'Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{"filters": {"status": '
            ).encode()
        )
        time.sleep(0.2)
        sock.close()
    time.sleep(1.0)
    assert httpx.get(f"{server.base}/healthz", timeout=5).status_code == 200
    new = server.log_text()[len(before) :]
    events = [json.loads(line) for line in new.splitlines() if line.startswith("{")]
    disconnects = [e for e in events if e.get("event") == "client_disconnected"]
    requests = [
        e for e in events if e.get("event") == "request" and e.get("route") == "/v1/agreements/{agreement_id}/extract"
    ]
    statuses = [e["status"] for e in requests]
    print(f"\n5 aborts mid-body: {len(disconnects)} client_disconnected events, statuses {statuses}")
    assert len(disconnects) == 5
    assert requests and all(e["status"] == 400 for e in requests)
    assert "Traceback" not in new and "Exception in ASGI application" not in new
    assert all(line.startswith("{") or not line.strip() for line in new.splitlines()), new[:500]


def _left_started(base: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dxg_disclosure_entries_left_started":
                return float(sample.value)
    raise AssertionError("no dxg_disclosure_entries_left_started")


def _multiproc_dir(pid: int) -> Path:
    """The folder gateway serve gave its workers (set after exec, so it is in the workers' environment)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        for entry in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                return Path(entry.split(b"=", 1)[1].decode())
    raise AssertionError("no worker has PROMETHEUS_MULTIPROC_DIR")


def test_two_workers_one_sum_and_the_value_files_go_with_the_server(server: Server) -> None:
    """``gateway serve --workers 2``: prometheus-client's multiprocess mode; any worker's scrape sums both."""
    port = _free_port()
    output = server.directory / "serve-workers.log"
    env = {k: v for k, v in os.environ.items() if k not in ("DXG_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")}
    config = str(server.directory / "gateway.yaml")
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli.main",
                "serve",
                "--config",
                config,
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        folder = _multiproc_dir(proc.pid)
        headers = {"Authorization": f"Bearer {server.key()}"}
        n = 40
        for _ in range(n):  # a new connection each: the two workers take turns accepting
            assert httpx.get(f"{base}/v1/agreements", headers=headers, timeout=10).status_code == 200
        seen = []
        for _ in range(6):
            text = httpx.get(f"{base}/metrics", timeout=10).text
            seen.append(
                sum(
                    s.value
                    for f in __import__("prometheus_client.parser").parser.text_string_to_metric_families(text)
                    for s in f.samples
                    if s.name == "dxg_http_requests_total" and s.labels.get("route") == "/v1/agreements"
                )
            )
        # A disclosure left started (as a crash leaves it), then finished again: every scrape, whichever worker
        # answers, shows the database's count now, not a count another worker took earlier.
        done = httpx.post(f"{base}{EXTRACT}", headers=headers, json={"limit": 1}, timeout=30)
        assert done.status_code == 200, done.text
        disclosure = done.headers["x-disclosure-id"]
        time.sleep(0.5)  # its final entry is queued after the last byte
        left = [_left_started(base) for _ in range(6)]
        with sqlite3.connect(server.directory / "gateway.db") as db:
            status, started_at = db.execute(
                "SELECT status, started_at FROM disclosures WHERE id = ?", (disclosure,)
            ).fetchone()
            db.execute(
                "UPDATE disclosures SET status = 'started', started_at = '2020-01-01 00:00:00.000000' WHERE id = ?",
                (disclosure,),
            )
        left += [_left_started(base) for _ in range(6)]
        with sqlite3.connect(server.directory / "gateway.db") as db:
            restore = "UPDATE disclosures SET status = ?, started_at = ? WHERE id = ?"
            db.execute(restore, (status, started_at, disclosure))
        left += [_left_started(base) for _ in range(6)]
        print(f"\n--workers 2, entries left started per scrape: {left}")
        assert left == [0] * 6 + [1] * 6 + [0] * 6
        pids = {p.stem.rsplit("_", 1)[-1] for p in folder.glob("counter_*.db")}
        print(f"\n--workers 2: {n} requests, scrapes report {seen}; value files of {len(pids)} processes")
        assert seen == [n] * 6
        assert len(pids) == 2  # both workers recorded, and every scrape summed them
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        _logscan.add_external(output.read_text(encoding="utf-8", errors="replace"), "test_serving_limits (workers)")
    assert not folder.exists()  # gateway serve removes its value files when it stops
