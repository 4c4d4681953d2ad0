"""Crash and fault tests with real processes: kill -9 mid-stream, restart, nothing lost, log verifies."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.cli.main import main

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("crash") / "deploy"
    assert main(["demo", "--rows", "20000", "--data-dir", str(directory), "--no-serve"]) == 0
    return directory


def _research_key(directory: Path) -> str:
    entries = json.loads((directory / "credentials.json").read_text())
    key: str = next(e["api_key"] for e in entries if "research-continuity" in e["agreements"])
    return key


def _start(directory: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli.main", "serve", "--data-dir", str(directory), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not start within 30 s")


@pytest.fixture
def server(deployment: Path) -> Iterator[tuple[Path, int, subprocess.Popen[bytes]]]:
    port = _free_port()
    proc = _start(deployment, port)
    yield deployment, port, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


def _statuses(directory: Path) -> dict[str, tuple[str, int]]:
    conn = sqlite3.connect(directory / "gateway.db")
    try:
        return {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, status, rows FROM disclosures")}
    finally:
        conn.close()


def test_kill_9_mid_stream_leaves_a_started_entry_and_a_valid_log(
    server: tuple[Path, int, subprocess.Popen[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, port, proc = server
    key = _research_key(directory)
    before = _statuses(directory)
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"http://127.0.0.1:{port}/v1/agreements/research-continuity/extract",
            headers={"Authorization": f"Bearer {key}"},
            json={},
        ) as response,
    ):
        assert response.status_code == 200
        disclosure_id = response.headers["x-disclosure-id"]
        received = 0
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > 10_000:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=10)
    after = _statuses(directory)
    assert disclosure_id in after and disclosure_id not in before
    assert after[disclosure_id][0] == "started"  # the crash left the write-ahead entry: compliance sees it
    for other, state in before.items():
        assert after[other] == state  # nothing else lost or changed
    assert main(["log", "verify", "--data-dir", str(directory)]) == 0
    capsys.readouterr()
    # restart: the gateway serves again and the log continues from where it was
    port2 = _free_port()
    proc2 = _start(directory, port2)
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port2}/v1/agreements/research-continuity/extract",
            headers={"Authorization": f"Bearer {key}"},
            json={"limit": 3},
            timeout=30,
        )
        assert response.status_code == 200
        assert _statuses(directory)[response.headers["x-disclosure-id"]] == ("completed", 3)
    finally:
        proc2.terminate()
        proc2.wait(timeout=10)
    assert main(["log", "verify", "--data-dir", str(directory)]) == 0


def test_client_disconnect_finalizes_aborted(server: tuple[Path, int, subprocess.Popen[bytes]]) -> None:
    directory, port, _proc = server
    key = _research_key(directory)
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"http://127.0.0.1:{port}/v1/agreements/research-continuity/extract",
            headers={"Authorization": f"Bearer {key}"},
            json={},
        ) as response,
    ):
        disclosure_id = response.headers["x-disclosure-id"]
        next(response.iter_bytes())
    # the client closed the connection; the server notices on its next write
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, rows = _statuses(directory)[disclosure_id]
        if status != "started":
            break
        time.sleep(0.2)
    assert status in ("aborted", "completed")
    if status == "aborted":
        assert rows < 20000


def _chattr(flag: str, *paths: Path) -> bool:
    try:
        result = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, check=False)
    except FileNotFoundError:
        return False
    return result.returncode == 0


def test_unwritable_log_fails_closed(deployment: Path, tmp_path: Path) -> None:
    """The log's files refuse writes (as on a full or read-only disk): 503, nothing released, and it recovers."""
    import shutil

    copy = tmp_path / "ro"
    shutil.copytree(deployment, copy)
    port = _free_port()
    proc = _start(copy, port)
    key = _research_key(copy)
    url = f"http://127.0.0.1:{port}/v1/agreements/research-continuity/extract"
    files = [p for p in (copy / "gateway.db", copy / "gateway.db-wal") if p.exists()]
    try:
        assert httpx.post(url, headers={"Authorization": f"Bearer {key}"}, json={"limit": 1}, timeout=30).is_success
        if not _chattr("+i", *files):
            pytest.skip("chattr +i is not available on this filesystem")
        before = len(_statuses(copy))
        response = httpx.post(url, headers={"Authorization": f"Bearer {key}"}, json={"limit": 5}, timeout=60)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert b"child_id" not in response.content
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
        assert ready.status_code in (200, 503)
        _chattr("-i", *files)
        assert len(_statuses(copy)) == before  # nothing half-written
        again = httpx.post(url, headers={"Authorization": f"Bearer {key}"}, json={"limit": 2}, timeout=30)
        assert again.status_code == 200
        assert len(again.text.splitlines()) == 2
    finally:
        _chattr("-i", *files)
        proc.terminate()
        proc.wait(timeout=10)
    assert main(["log", "verify", "--data-dir", str(copy)]) == 0
