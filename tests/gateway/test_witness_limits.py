"""Attack: a slowloris against ``gateway witness serve``, with real sockets against a real witness process.

The witness is a public endpoint (any log it witnesses posts to it), so it is as exposed as the gateway. Before this
test it ran plain uvicorn, which has no request-head timeout: 50 connections that never finished their headers were
all still open after 15 s (held for ever), as was a body dribbled in byte by byte. Now it runs the
gateway's protocol (gateway.web.serving) with its header and body limits.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keys import SigningKey
from tests.gateway.witness_support import WitnessProcess
from tlog import format_verifier_key

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 2.0
SLACK_S = 3.0  # a loaded 2-core machine: the timers are exact, the test's view of them is not


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[WitnessProcess]:
    log_vkey = format_verifier_key("registry.example/log", SigningKey.generate().public_key.raw)
    process = WitnessProcess(
        tmp_path / "w",
        "authority.example/w1",
        log_vkey,
        "--header-timeout-s",
        str(HEADER_TIMEOUT_S),
        "--body-timeout-s",
        str(BODY_TIMEOUT_S),
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _open(witness: WitnessProcess, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", witness.port))
    sock.sendall(data)
    sock.setblocking(False)
    return sock


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _seconds_until_all_closed(sockets: list[socket.socket], timeout: float) -> float:
    started = time.monotonic()
    open_ = list(sockets)
    while open_ and time.monotonic() - started < timeout:
        open_ = [s for s in open_ if not _closed(s)]
        time.sleep(0.05)
    return time.monotonic() - started if not open_ else float("inf")


def test_half_open_request_heads_are_closed_after_the_header_timeout(witness: WitnessProcess) -> None:
    head = b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 10\r\n"  # never the blank line
    sockets = [_open(witness, head) for _ in range(50)]
    try:
        took = _seconds_until_all_closed(sockets, HEADER_TIMEOUT_S + SLACK_S + 5)
        print(f"50 half-open heads closed after {took:.2f} s")
        assert took <= HEADER_TIMEOUT_S + SLACK_S
        # the witness still answers others
        assert httpx.get(witness.url + "/healthz", timeout=5).status_code == 200
    finally:
        for s in sockets:
            s.close()


def test_a_dribbled_body_is_cut_after_the_body_timeout(witness: WitnessProcess) -> None:
    sock = _open(witness, b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 1000\r\n\r\nold 0\n")
    try:
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < BODY_TIMEOUT_S + 2 + SLACK_S + 5:
            try:
                sock.send(b"x")
            except OSError:
                closed = True
                break
            if _closed(sock):
                closed = True
                break
            time.sleep(0.3)
        took = time.monotonic() - started
        print(f"dribbled body cut after {took:.2f} s")
        assert closed and took <= BODY_TIMEOUT_S + 2 + SLACK_S
    finally:
        sock.close()
