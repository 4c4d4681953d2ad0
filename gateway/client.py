"""The requester's client: download an extract, prove it against the signed disclosure log, keep it only if it holds.

``fetch`` (and ``gateway fetch``) streams the extract into a temporary file beside the target, hashing while it
writes; fetches the receipt of the disclosure the response names (``X-Disclosure-Id``) and the log's public key
(pinned from a file, or asked of the gateway); verifies the receipt offline (:func:`gateway.audit.receipts.
verify_receipt`: both entries, inclusion proofs, the Ed25519-signed checkpoint) and that the finished entry records
exactly the bytes received (SHA-256 and length). Only then is the file renamed into place (atomically, one
``os.replace``); on any failure the temporary file is removed, a file already at the target is left as it was, and
``FetchError`` names the check that failed.

No resuming. An extract is one logged disclosure: the log entry records the SHA-256 of the whole body as sent, and a
``Range`` request would be a second release of the same rows that nobody logs (or a new disclosure whose bytes
differ from the first part's). So a broken download leaves nothing behind, the gateway logs the disclosure as
``aborted`` with what was sent, and a retry is a new disclosure that counts against the agreement's quotas.

A key fetched from the gateway proves only that the gateway's log is consistent with itself: a gateway that lies
can sign with any key. Pinning the key (``public_key=``, the deployment's ``log.pub`` obtained out of band) is what
proves the release is in *the* registry's log; the result says which one was used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from gateway.audit.receipts import verify_receipt
from gateway.audit.signer import LogVerifier
from keys import KeysError

__all__ = ["DEFAULT_URL", "FetchError", "FetchResult", "Progress", "fetch"]

DEFAULT_URL = "http://127.0.0.1:8000"
#: called with (bytes written, rows seen so far or None when the format does not show them while streaming)
Progress = Callable[[int, "int | None"], None]
_CHUNK = 1 << 16
#: what the gateway's disclosure ids look like (32 hex digits today), loosely: safe in a URL path and on a terminal
_DISCLOSURE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: the finished entry is written when the stream ends; a receipt asked for at once may precede it by a moment
_RECEIPT_ATTEMPTS = 8


class FetchError(Exception):
    """A fetch that did not prove what it received; ``check`` names the step (``request``, ``download``,
    ``public-key``, ``receipt``, ``content``, ``write``). Messages carry no key material and no row data."""

    def __init__(self, check: str, message: str, *, disclosure_id: str | None = None) -> None:
        super().__init__(message)
        self.check = check
        self.disclosure_id = disclosure_id


@dataclass(frozen=True, slots=True)
class FetchResult:
    path: Path
    receipt_path: Path
    disclosure_id: str
    agreement_id: str
    agreement_version: int
    recipient: str
    rows: int
    nbytes: int
    sha256: str
    key_fingerprint: str
    key_pinned: bool
    key_source: str
    tree_size: int

    def statement(self) -> str:
        """What the fetch proved, in plain words."""
        pinned = (
            f"the key pinned from {self.key_source}"
            if self.key_pinned
            else (
                f"the key the gateway served at {self.key_source} (NOT pinned: this proves the gateway's log is "
                "consistent with itself, not that it is the registry's log; pass --public-key log.pub to prove that)"
            )
        )
        return (
            f"The gateway's disclosure log, signed by key {self.key_fingerprint} ({pinned}), records disclosure "
            f"{self.disclosure_id} of {self.rows} rows / {self.nbytes} bytes with SHA-256 {self.sha256} to "
            f"{self.recipient} under agreement {self.agreement_id} v{self.agreement_version}, included in the signed "
            f"tree of size {self.tree_size}. The file {self.path} is exactly those bytes. "
            f"Receipt kept at {self.receipt_path} (check again any time with `gateway receipt verify`)."
        )


def _problem(response: httpx.Response) -> str:
    """A server refusal as its title and detail (problem+json), else the status line; never the body verbatim."""
    try:
        body = json.loads(response.read())
    except (ValueError, httpx.HTTPError):
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("title"), str):
        detail = body.get("detail")
        text = str(body["title"]) + (f": {detail}" if isinstance(detail, str) and detail else "")
        return f"{response.status_code} {text}"
    return f"{response.status_code} {response.reason_phrase or 'error'} (not a problem+json answer)"


def _load_key(client: httpx.Client, public_key: Path | None) -> tuple[LogVerifier, bool, str]:
    if public_key is not None:
        try:
            pem = public_key.read_text(encoding="utf-8")
        except OSError as exc:
            raise FetchError("public-key", f"{public_key}: cannot read the public key: {exc.strerror}") from exc
        source = str(public_key)
    else:
        try:
            response = client.get("/v1/log/public-key")
        except httpx.HTTPError as exc:
            raise FetchError("public-key", f"cannot fetch the log's public key: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise FetchError("public-key", f"the gateway did not serve its public key: {_problem(response)}")
        pem, source = response.text, str(response.request.url)
    try:
        return LogVerifier.from_pem(pem), public_key is not None, source
    except (ValueError, KeysError) as exc:
        raise FetchError("public-key", f"{source}: not an Ed25519 public key in PEM form") from exc


def _receipt(client: httpx.Client, disclosure_id: str, headers: Mapping[str, str]) -> Any:
    delay = 0.1
    for attempt in range(_RECEIPT_ATTEMPTS):
        try:
            response = client.get(f"/v1/disclosures/{disclosure_id}/receipt", headers=headers)
        except httpx.HTTPError as exc:
            raise FetchError(
                "receipt", f"cannot fetch the receipt: {type(exc).__name__}", disclosure_id=disclosure_id
            ) from exc
        if response.status_code == 200:
            try:
                receipt = response.json()
            except ValueError:
                raise FetchError("receipt", "the receipt is not JSON", disclosure_id=disclosure_id) from None
            entries = receipt.get("entries") if isinstance(receipt, dict) else None
            finished = isinstance(entries, list) and any(
                isinstance(e, dict) and '"disclosure.finished"' in str(e.get("entry", "")) for e in entries
            )
            if finished or attempt == _RECEIPT_ATTEMPTS - 1:
                return receipt
        elif response.status_code != 503 or attempt == _RECEIPT_ATTEMPTS - 1:
            raise FetchError(
                "receipt", f"the gateway refused the receipt: {_problem(response)}", disclosure_id=disclosure_id
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # the last attempt returns or raises


def _count_rows(fmt: str) -> Callable[[bytes], int] | None:
    """Rows seen in a chunk, for progress only (the log's count is the one reported)."""
    if fmt == "ndjson":
        return lambda chunk: chunk.count(b"\n")
    if fmt == "csv":
        return lambda chunk: chunk.count(b"\r\n")  # a quoted line break in a cell counts too: progress only
    return None


def _download(response: httpx.Response, out: BinaryIO, fmt: str, progress: Progress | None) -> tuple[str, int]:
    digest, nbytes, rows = hashlib.sha256(), 0, 0
    counter = _count_rows(fmt)
    for chunk in response.iter_bytes(_CHUNK):
        out.write(chunk)
        digest.update(chunk)
        nbytes += len(chunk)
        if counter is not None:
            rows += counter(chunk)
        if progress is not None:
            shown = None if counter is None else max(rows - (fmt == "csv"), 0)
            progress(nbytes, shown)
    out.flush()
    os.fsync(out.fileno())  # durable before the rename makes it the file
    return digest.hexdigest(), nbytes


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def fetch(
    agreement: str,
    out: Path,
    *,
    api_key: str,
    url: str = DEFAULT_URL,
    filters: Mapping[str, Any] | None = None,
    fields: Sequence[str] | None = None,
    format: str = "ndjson",
    limit: int | None = None,
    public_key: Path | None = None,
    progress: Progress | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 60.0,
) -> FetchResult:
    """Download an extract of ``agreement`` into ``out``, proven against the signed log (see the module docstring).
    Raises ``FetchError`` naming the failed check; then nothing is written at ``out``."""
    out = Path(out)
    body: dict[str, Any] = {"format": format}
    if filters is not None:
        body["filters"] = dict(filters)
    if fields is not None:
        body["fields"] = list(fields)
    if limit is not None:
        body["limit"] = limit
    headers = {"Authorization": f"Bearer {api_key}"}
    if not out.parent.is_dir():
        raise FetchError("write", f"{out.parent}: no such directory")
    with httpx.Client(base_url=url, transport=transport, timeout=timeout) as client:
        # The key first: a pinned key that cannot be read fails before anything is disclosed.
        verifier, pinned, source = _load_key(client, public_key)
        try:
            fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
        except OSError as exc:  # before the request: nothing disclosed for a file that could not be kept
            raise FetchError("write", f"{out.parent}: cannot create a file there: {exc.strerror}") from exc
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                disclosure_id, sha256, nbytes = _extract(client, agreement, body, headers, handle, format, progress)
            receipt = _receipt(client, disclosure_id, headers)
            report = verify_receipt(receipt, verifier, disclosure_id=disclosure_id)
            if not report.ok:
                raise FetchError(
                    "receipt", f"the receipt does not verify: {report.problems[0]}", disclosure_id=disclosure_id
                )
            started = next(e for e in report.entries if e.get("type") == "disclosure.started")
            finished = next(e for e in report.entries if e.get("type") == "disclosure.finished")
            terms = started.get("agreement") or {}
            if terms.get("id") != agreement:
                raise FetchError("receipt", "the receipt is for another agreement", disclosure_id=disclosure_id)
            if finished.get("sha256") != sha256 or finished.get("bytes") != nbytes:
                raise FetchError(
                    "content",
                    f"the bytes received ({nbytes} bytes, SHA-256 {sha256}) are not what the log records as sent "
                    f"({finished.get('bytes')} bytes, SHA-256 {finished.get('sha256')}): altered on the way",
                    disclosure_id=disclosure_id,
                )
            receipt_path = out.with_name(out.name + ".receipt.json")
            try:
                os.replace(tmp, out)
                try:
                    _write_atomically(receipt_path, json.dumps(receipt, indent=1).encode("utf-8"))
                except OSError:
                    out.unlink()  # a file is kept only with its receipt beside it
                    raise
            except OSError as exc:
                raise FetchError(
                    "write", f"{out}: verified, but cannot be put in place: {exc.strerror}", disclosure_id=disclosure_id
                ) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    assert report.checkpoint is not None  # a verified receipt has its checkpoint
    return FetchResult(
        path=out,
        receipt_path=receipt_path,
        disclosure_id=disclosure_id,
        agreement_id=agreement,
        agreement_version=int(terms.get("version", 0)),
        recipient=str(started.get("recipient")),
        rows=int(finished.get("rows", 0)),
        nbytes=nbytes,
        sha256=sha256,
        key_fingerprint=verifier.fingerprint(),
        key_pinned=pinned,
        key_source=source,
        tree_size=report.checkpoint.size,
    )


def _extract(
    client: httpx.Client,
    agreement: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    handle: BinaryIO,
    fmt: str,
    progress: Progress | None,
) -> tuple[str, str, int]:
    """POST the extract and stream it into ``handle``: (disclosure id, SHA-256, bytes)."""
    disclosure_id: str | None = None
    try:
        with client.stream("POST", f"/v1/agreements/{agreement}/extract", json=dict(body), headers=headers) as resp:
            if resp.status_code != 200:
                raise FetchError("request", f"the gateway refused the extract: {_problem(resp)}")
            named = resp.headers.get("x-disclosure-id")
            if not named:
                raise FetchError("request", "the response names no disclosure (no X-Disclosure-Id header)")
            if not _DISCLOSURE_ID.fullmatch(named):
                # It goes into the receipt's URL (with the bearer key) and into messages: '../' or terminal control
                # sequences from a malicious gateway or a proxy would be followed or printed. Not echoed.
                raise FetchError("request", "the X-Disclosure-Id header is not a disclosure id (letters, digits, - _)")
            disclosure_id = named
            sha256, nbytes = _download(resp, handle, fmt, progress)
    except httpx.HTTPError as exc:
        if disclosure_id is None:
            raise FetchError("request", f"cannot reach the gateway at {client.base_url}: {type(exc).__name__}") from exc
        raise FetchError(
            "download",
            f"the download broke ({type(exc).__name__}); nothing was kept. The gateway logs disclosure "
            f"{disclosure_id} as aborted with what it sent; a new fetch is a new disclosure (it counts against the "
            "agreement's quotas)",
            disclosure_id=disclosure_id,
        ) from exc
    return disclosure_id, sha256, nbytes
