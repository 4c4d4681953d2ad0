"""Whole-run log scan: everything the gateway logs during the test run is searched for seeded secrets and personal data.

A pytest plugin (registered by ``tests/conftest.py``). During the run it

* configures the gateway's production logging (structlog JSON with the scrubbing processor, level debug) before
  every test, writing to the current stderr, and tees every line any structlog ``PrintLogger``/``WriteLogger``
  writes (whatever configuration a test installs, e.g. ``test_logging_scrub``'s own stream) into a buffer,
  labelled with the test that was running;
* keeps stdlib ``logging`` records too (``gateway.*`` from debug up, everything else that reaches the root logger);
* takes the output of gateway processes that tests start (``add_external``: ``tests/reliability/test_faults.py``
  hands over its servers' stdout and stderr);
* collects the seeded values: every API key any in-process code issues (``PrincipalStore._new_key`` is observed:
  test harnesses, demo deployments, ``gateway principals add``), every ``MasterKey`` constructed (hex and base64),
  and personal data of the test registries (``register_registry``: national ids, guardian ids and phones, student
  numbers, names of the 600-row ``registry_path`` fixture).

At the end of the session the buffer is scanned; a hit fails the run (exit status 1) and names the kind of value,
its first characters and length (never the value), and the test or process that logged it.

Scanning is a token pass: ASCII needles are indexed by a 6-character prefix and looked up inside runs of
``[0-9A-Za-z_+/=-]``; names are looked up among the substrings of CJK runs. Secrets are registered by their first 16
characters, so a truncated secret is found too.
"""

from __future__ import annotations

import base64
import logging
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "Finding",
    "LogCapture",
    "Needles",
    "add_external",
    "capture",
    "needles",
    "register_bytes",
    "register_registry",
    "register_secret",
    "scan",
]

_PREFIX = 6
_SECRET_CHARS = 16  # a secret is registered by this many leading characters: a truncated one is still found
_ASCII_RUN = re.compile(rf"[0-9A-Za-z_+/=\-]{{{_PREFIX},}}")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]{2,}")
_ASCII_NEEDLE = re.compile(r"[0-9A-Za-z_+/=\-]+")
_CJK_NEEDLE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    shown: str  # the first characters of the value and its length, never the whole value
    where: str
    line: int

    def __str__(self) -> str:
        return f"{self.kind} {self.shown} logged by {self.where} (line {self.line} of its log)"


class Needles:
    """Seeded values to look for: ASCII ones by prefix, CJK names by value."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ascii: dict[str, dict[str, str]] = {}  # prefix -> needle -> kind
        self._cjk: dict[str, str] = {}
        self._cjk_lengths: set[int] = set()

    def __len__(self) -> int:
        return sum(len(v) for v in self._ascii.values()) + len(self._cjk)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        return value in self._cjk or value in self._ascii.get(value[:_PREFIX], {})

    def add(self, value: str, kind: str) -> None:
        if not value:
            return
        with self._lock:
            if _ASCII_NEEDLE.fullmatch(value) and len(value) >= 8:
                self._ascii.setdefault(value[:_PREFIX], {})[value] = kind
            elif _CJK_NEEDLE.fullmatch(value) and len(value) >= 2:
                self._cjk[value] = kind
                self._cjk_lengths.add(len(value))
            # anything else (short, mixed) is not searched for: it would match by chance

    def find(self, text: str) -> Iterator[tuple[int, str, str]]:
        """(offset, needle, kind) for every seeded value in ``text``."""
        ascii_index, cjk, lengths = self._ascii, self._cjk, sorted(self._cjk_lengths)
        if ascii_index:
            for match in _ASCII_RUN.finditer(text):
                run, start = match.group(), match.start()
                for i in range(len(run) - _PREFIX + 1):
                    candidates = ascii_index.get(run[i : i + _PREFIX])
                    if candidates:
                        for needle, kind in candidates.items():
                            if run.startswith(needle, i):
                                yield start + i, needle, kind
        if cjk:
            for match in _CJK_RUN.finditer(text):
                run, start = match.group(), match.start()
                for size in lengths:
                    for i in range(len(run) - size + 1):
                        kind = cjk.get(run[i : i + size])
                        if kind is not None:
                            yield start + i, run[i : i + size], kind


def _shown(value: str) -> str:
    return f"'{value[:4]}…' ({len(value)} chars)"


def scan(records: Iterable[tuple[str, str]], seeded: Needles) -> list[Finding]:
    """Look for every seeded value in ``records`` ((where, text) pairs); one finding per value and place."""
    findings: dict[tuple[str, str], Finding] = {}
    for where, text in records:
        for offset, needle, kind in seeded.find(text):
            key = (needle, where)
            if key not in findings:
                findings[key] = Finding(kind, _shown(needle), where, text.count("\n", 0, offset) + 1)
    return list(findings.values())


class LogCapture:
    """What was logged, by the test (or process) that was running: a list of (where, text) chunks."""

    def __init__(self) -> None:
        self.current = "session setup"
        self.chunks: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def add(self, text: str, where: str | None = None) -> None:
        with self._lock:
            self.chunks.append((where or self.current, text))

    def records(self) -> list[tuple[str, str]]:
        """One (where, text) per place, lines joined in the order they were logged."""
        with self._lock:
            grouped: dict[str, list[str]] = {}
            for where, text in self.chunks:
                grouped.setdefault(where, []).append(text)
        return [(where, "\n".join(texts)) for where, texts in grouped.items()]


needles = Needles()
capture = LogCapture()


def register_secret(value: str, kind: str, *, into: Needles | None = None) -> None:
    """A secret string (an API key, ...): registered by its leading characters, so truncations are found too."""
    into = needles if into is None else into
    into.add(value[:_SECRET_CHARS], kind)
    if value.startswith("dxg_") and value.count("_") >= 2:  # an API key: its secret part alone is a leak too
        secret = value.split("_", 2)[2]
        into.add(secret[:_SECRET_CHARS], kind + " (secret part)")


def register_bytes(value: bytes, kind: str, *, into: Needles | None = None) -> None:
    """Secret bytes (a master key) in the text forms they could be logged in: hex and base64."""
    into = needles if into is None else into
    forms = (
        value.hex(),
        value.hex().upper(),
        base64.b64encode(value).decode(),
        base64.urlsafe_b64encode(value).decode(),
    )
    for form in forms:
        into.add(form[:_SECRET_CHARS], kind)


def register_registry(path: Path, *, limit: int | None = None) -> int:
    """Personal data of a demo registry (SQLite): ids, phones, student numbers and names of its children."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        query = (
            "SELECT national_id, guardian_national_id, guardian_phone, student_number, name, guardian_name "
            "FROM child_registry ORDER BY child_id"
        )
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        rows = conn.execute(query).fetchall()
    finally:
        conn.close()
    kinds = ("national id", "guardian national id", "guardian phone", "student number", "name", "guardian name")
    for row in rows:
        for kind, value in zip(kinds, row, strict=True):
            if isinstance(value, str):
                needles.add(value, f"personal data: {kind}")
    return len(rows)


def add_external(text: str, where: str) -> None:
    """Output of a process a test started (a gateway server's stdout/stderr)."""
    if text:
        capture.add(text, where)


# -- capture ------------------------------------------------------------------------------------------------------
class _CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is now (pytest swaps it per test)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            capture.add(f"{record.name} {record.levelname} {self.format(record)}")
        except Exception:  # pragma: no cover - a log record that cannot be formatted is not ours to fail on
            self.handleError(record)


def _tee(original: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Any, message: Any = "") -> Any:
        capture.add(message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message))
        return original(self, message)

    method.__dxg_logscan__ = True  # type: ignore[attr-defined]
    return method


def _patch_structlog() -> None:
    import structlog

    for cls in (structlog.PrintLogger, structlog.WriteLogger, structlog.BytesLogger):
        original = cls.msg
        if getattr(original, "__dxg_logscan__", False):
            continue
        teed = _tee(original)
        for name in list(vars(cls)):
            if vars(cls)[name] is original:  # msg and its aliases (info, warning, error, ...)
                setattr(cls, name, teed)


def _observe_secrets() -> None:
    """Register every API key and master key in-process code creates, wherever it is created."""
    from gateway.auth import PrincipalStore
    from keys import MasterKey

    new_key = PrincipalStore._new_key
    if not getattr(new_key, "__dxg_logscan__", False):

        def _new_key(self: PrincipalStore, conn: Any, name: str) -> str:
            key = new_key(self, conn, name)
            register_secret(key, "API key")
            return key

        _new_key.__dxg_logscan__ = True  # type: ignore[attr-defined]
        PrincipalStore._new_key = _new_key  # type: ignore[method-assign]

    init = MasterKey.__init__
    if not getattr(init, "__dxg_logscan__", False):

        def _init(self: MasterKey, key: Any) -> None:
            init(self, key)
            register_bytes(key.reveal(), "master key")

        _init.__dxg_logscan__ = True  # type: ignore[attr-defined]
        MasterKey.__init__ = _init  # type: ignore[method-assign]


def _configure_gateway_logging() -> None:
    from gateway.applog import configure_logging

    configure_logging(fmt="json", level="debug", stream=_CurrentStderr())  # type: ignore[arg-type]


class LogScanPlugin:
    def __init__(self) -> None:
        self._handler = _Handler()
        self._lines: list[str] = []
        self._failed = False

    @pytest.hookimpl
    def pytest_configure(self, config: pytest.Config) -> None:
        _patch_structlog()
        _observe_secrets()
        gateway_logger = logging.getLogger("gateway")
        if gateway_logger.level == logging.NOTSET:
            gateway_logger.setLevel(logging.DEBUG)
        logging.getLogger().addHandler(self._handler)
        _configure_gateway_logging()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        capture.current = item.nodeid
        _configure_gateway_logging()  # a test before may have reset structlog to its defaults
        yield
        capture.current = "session teardown"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        logging.getLogger().removeHandler(self._handler)
        findings = scan(capture.records(), needles)
        self._lines = [f"{len(needles)} seeded values searched in {len(capture.chunks)} logged chunks"]
        if findings:
            self._lines.append(f"{len(findings)} seeded secret or personal value(s) reached the logs:")
            self._lines.extend(f"  {finding}" for finding in findings[:50])
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self._failed = bool(findings)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._lines:
            terminalreporter.write_sep("-", "log scan", red=self._failed)
            for line in self._lines:
                terminalreporter.write_line(line, red=self._failed)
