"""``gateway fetch`` and ``gateway.client.fetch`` against the real app served by uvicorn on a free port.

Attacks first: a proxy that alters one byte of the extract, a receipt checked against another key pinned by the
requester, a download cut in the middle; each must leave nothing at the target and exit 1 naming the check.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from gateway.cli.main import main
from gateway.client import FetchError, fetch
from keys import SigningKey
from tests.gateway.harness import Env

RESEARCH = "research-continuity"


@pytest.fixture
def served(sqlite_env: Env) -> Iterator[tuple[Env, str]]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(sqlite_env.app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield sqlite_env, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def log_pub(served: tuple[Env, str], tmp_path: Path) -> Path:
    env, _ = served
    assert env.services.signer is not None
    path = tmp_path / "log.pub"
    path.write_text(env.services.signer.public_key.to_pem(), encoding="utf-8")
    return path


class _OneByteProxy(httpx.BaseTransport):
    """A man in the middle: passes everything through, but flips one byte of every extract body."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if not request.url.path.endswith("/extract") or response.status_code != 200:
            return response
        body = bytearray(response.read())
        body[len(body) // 2] ^= 0x01
        headers = [
            (k, v) for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=bytes(body))

    def close(self) -> None:
        self._inner.close()


class _CutProxy(httpx.BaseTransport):
    """The connection breaks after the first chunk of the extract."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if not request.url.path.endswith("/extract"):
            return response

        class Broken(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                yield response.read()[:100]
                raise httpx.ReadError("connection reset by peer")

        return httpx.Response(response.status_code, headers=response.headers, stream=Broken())

    def close(self) -> None:
        self._inner.close()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_fetch_proves_the_bytes_and_keeps_the_receipt(served: tuple[Env, str], log_pub: Path, tmp_path: Path) -> None:
    env, url = served
    out = tmp_path / "extract.ndjson"
    result = fetch(RESEARCH, out, api_key=env.keys["research"], url=url, public_key=log_pub)
    data = out.read_bytes()
    entry = env.disclosure(result.disclosure_id)
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() == result.sha256
    assert entry["bytes"] == len(data) == result.nbytes
    assert result.rows == entry["rows"] == len(data.splitlines()) > 0
    assert result.key_pinned and result.recipient == "pku-education-lab" and result.agreement_version == 1
    assert result.receipt_path.exists() and not _leftovers(tmp_path)
    statement = result.statement()
    assert result.disclosure_id in statement and result.sha256 in statement and "pinned" in statement
    assert "NOT pinned" not in statement
    # The kept receipt verifies with the stock offline verifier too.
    assert (
        main(["receipt", "verify", str(result.receipt_path), "--public-key", str(log_pub), "--content", str(out)]) == 0
    )


def test_a_key_fetched_from_the_gateway_is_said_not_to_be_pinned(served: tuple[Env, str], tmp_path: Path) -> None:
    env, url = served
    result = fetch(RESEARCH, tmp_path / "x.csv", api_key=env.keys["research"], url=url, format="csv")
    assert not result.key_pinned and "/v1/log/public-key" in result.key_source
    assert "NOT pinned" in result.statement()


def test_parquet_fetch(served: tuple[Env, str], log_pub: Path, tmp_path: Path) -> None:
    env, url = served
    out = tmp_path / "x.parquet"
    result = fetch(RESEARCH, out, api_key=env.keys["research"], url=url, format="parquet", public_key=log_pub, limit=50)
    assert pq.read_table(out).num_rows == result.rows == 50


def test_one_altered_byte_is_caught_and_nothing_is_kept(served: tuple[Env, str], log_pub: Path, tmp_path: Path) -> None:
    env, url = served
    out = tmp_path / "extract.ndjson"
    with pytest.raises(FetchError) as caught:
        fetch(RESEARCH, out, api_key=env.keys["research"], url=url, public_key=log_pub, transport=_OneByteProxy())
    assert caught.value.check == "content" and "altered" in str(caught.value)
    assert not out.exists() and not _leftovers(tmp_path)
    assert not (tmp_path / "extract.ndjson.receipt.json").exists()
    # The gateway did release (and log) the true bytes: the mismatch is on the way, not in the log.
    assert env.disclosure(str(caught.value.disclosure_id))["status"] == "completed"


def test_a_receipt_under_another_key_fails_when_the_key_is_pinned(
    served: tuple[Env, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env, url = served
    other = tmp_path / "other.pub"
    other.write_text(SigningKey.generate().public_key.to_pem(), encoding="utf-8")
    out = tmp_path / "extract.ndjson"
    out.write_bytes(b"an older file\n")  # a file already there is left as it was
    code = main(["fetch", RESEARCH, "--out", str(out), "--url", url, "--api-key", env.keys["research"],
                 "--public-key", str(other), "--quiet"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "receipt check" in err and "signature" in err
    assert out.read_bytes() == b"an older file\n" and not _leftovers(tmp_path)
    assert env.keys["research"] not in err


def test_a_cut_download_keeps_nothing_and_says_a_retry_is_a_new_disclosure(
    served: tuple[Env, str], log_pub: Path, tmp_path: Path
) -> None:
    env, url = served
    out = tmp_path / "extract.ndjson"
    with pytest.raises(FetchError) as caught:
        fetch(RESEARCH, out, api_key=env.keys["research"], url=url, public_key=log_pub, transport=_CutProxy())
    assert caught.value.check == "download" and "new disclosure" in str(caught.value)
    assert not out.exists() and not _leftovers(tmp_path)


@pytest.mark.parametrize(
    ("who", "args", "status", "title"),
    [
        ("outsider", [], "403", "not a party"),
        ("research", ["--fields", "name"], "422", "not valid under the agreement"),
        ("research", ["--filters", '{"birth_date": {"eq": "2021-03-14"}}'], "422", "not valid under the agreement"),
    ],
)
def test_server_refusals_are_shown_as_title_and_detail(
    served: tuple[Env, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    who: str,
    args: list[str],
    status: str,
    title: str,
) -> None:
    env, url = served
    monkeypatch.setenv("DXG_API_KEY", env.keys[who])
    monkeypatch.setenv("DXG_URL", url)
    out = tmp_path / "x.ndjson"
    assert main(["fetch", RESEARCH, "--out", str(out), *args]) == 1
    err = capsys.readouterr().err
    assert "request check" in err and status in err and title.lower() in err.lower()
    assert not out.exists() and not _leftovers(tmp_path)


def test_cli_success_prints_what_was_proven(
    served: tuple[Env, str], log_pub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    env, url = served
    monkeypatch.setenv("DXG_API_KEY", env.keys["research"])
    out = tmp_path / "x.ndjson"
    code = main(["fetch", RESEARCH, "--out", str(out), "--url", url, "--public-key", str(log_pub), "--limit", "7",
                 "--filters", '{"status": {"eq": "enrolled"}}'])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("fetch OK: The gateway's disclosure log, signed by key sha256:")
    assert "of 7 rows" in printed.out and str(out) in printed.out
    assert "receiving:" not in printed.err  # not a TTY: no progress (the served app logs to stderr too)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and {r["status"] for r in rows} == {"enrolled"}


def test_usage_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DXG_API_KEY", raising=False)
    assert main(["fetch", RESEARCH, "--out", str(tmp_path / "x")]) == 2
    assert main(["fetch", RESEARCH, "--out", str(tmp_path / "x"), "--api-key", "k", "--filters", "[1]"]) == 2
    assert "API key" in capsys.readouterr().err


def test_progress_reports_bytes_and_rows_as_they_arrive(served: tuple[Env, str], tmp_path: Path) -> None:
    env, url = served
    seen: list[tuple[int, int | None]] = []
    result = fetch(
        RESEARCH,
        tmp_path / "x.ndjson",
        api_key=env.keys["research"],
        url=url,
        progress=lambda b, r: seen.append((b, r)),
    )
    assert seen and seen[-1] == (result.nbytes, result.rows)
    assert [b for b, _ in seen] == sorted(b for b, _ in seen)


def test_a_target_that_cannot_be_written_fails_before_anything_is_disclosed(
    served: tuple[Env, str], tmp_path: Path
) -> None:
    env, url = served
    with pytest.raises(FetchError) as missing:
        fetch(RESEARCH, tmp_path / "no-such-dir" / "x.ndjson", api_key=env.keys["research"], url=url)
    assert missing.value.check == "write"
    (tmp_path / "taken").mkdir()
    with pytest.raises(FetchError) as taken:  # the target is a directory: verified, but not put in place
        fetch(RESEARCH, tmp_path / "taken", api_key=env.keys["research"], url=url)
    assert taken.value.check == "write" and not _leftovers(tmp_path)
    assert not (tmp_path / "taken.receipt.json").exists()
    kinds = [json.loads(b)["type"] for b in env.log_bodies()]
    assert kinds.count("disclosure.started") == 1  # the missing directory disclosed nothing


class _HeaderProxy(httpx.BaseTransport):
    """A malicious gateway (or a man in the middle): the true extract, under an X-Disclosure-Id of its choosing."""

    def __init__(self, disclosure_id: str) -> None:
        self._inner = httpx.HTTPTransport()
        self.disclosure_id = disclosure_id
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        response = self._inner.handle_request(request)
        if not request.url.path.endswith("/extract"):
            return response
        body = response.read()
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "x-disclosure-id"]
        return httpx.Response(200, headers=[*headers, ("X-Disclosure-Id", self.disclosure_id)], content=body)

    def close(self) -> None:
        self._inner.close()


@pytest.mark.parametrize(
    "injected",
    [
        "../../log/vkey?",  # path traversal: the receipt request would go elsewhere with the bearer key
        "%2e%2e%2f%2e%2e%2fadmin",  # the same, percent-encoded
        "\x1b]0;fetch OK\x07\x1b[2K",  # terminal control sequences, printed in messages
        "a" * 500,  # absurdly long
    ],
)
def test_an_injected_disclosure_id_is_refused_before_it_is_used(
    served: tuple[Env, str], log_pub: Path, tmp_path: Path, injected: str
) -> None:
    env, url = served
    out = tmp_path / "extract.ndjson"
    proxy = _HeaderProxy(injected)
    with pytest.raises(FetchError) as caught:
        fetch(RESEARCH, out, api_key=env.keys["research"], url=url, public_key=log_pub, transport=proxy)
    assert caught.value.check == "request" and "X-Disclosure-Id" in str(caught.value)
    assert injected not in str(caught.value) and caught.value.disclosure_id is None
    assert all(p.startswith("/v1/agreements/") for p in proxy.paths)  # no request made with the injected id
    assert not out.exists() and not _leftovers(tmp_path)


def test_the_id_of_another_real_disclosure_does_not_pass(
    served: tuple[Env, str], log_pub: Path, tmp_path: Path
) -> None:
    """A receipt for a different disclosure (a real, verifying one, of the same agreement and recipient)."""
    env, url = served
    first = fetch(RESEARCH, tmp_path / "first.ndjson", api_key=env.keys["research"], url=url, public_key=log_pub,
                  limit=3)  # fmt: skip
    out = tmp_path / "second.ndjson"
    with pytest.raises(FetchError) as caught:
        fetch(RESEARCH, out, api_key=env.keys["research"], url=url, public_key=log_pub, limit=4,
              transport=_HeaderProxy(first.disclosure_id))  # fmt: skip
    assert caught.value.check == "content"
    assert not out.exists() and not _leftovers(tmp_path)
