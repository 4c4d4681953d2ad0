"""The whole-run log scan (tests/_logscan.py) catches what it should: planted values, through the real capture."""

from __future__ import annotations

import base64
import logging
import secrets
import sqlite3
from pathlib import Path

from gateway.applog import get_logger
from tests import _logscan


def test_scan_finds_planted_values_without_showing_them() -> None:
    seeded = _logscan.Needles()
    api_key = "dxg_" + "a" * 16 + "_" + secrets.token_urlsafe(32)
    secret_part = api_key.split("_", 2)[2]
    _logscan.register_secret(api_key, "API key", into=seeded)
    seeded.add("11010519491231002X", "national id")
    seeded.add("13812345678", "phone")
    seeded.add("张伟", "name")
    records = [
        ("tests/a.py::test_key", f'{{"event": "x", "note": "{secret_part[:20]}"}}'),  # a truncated secret part
        ("tests/b.py::test_id", 'line one\n{"detail": "id=11010519491231002X, call 13812345678"}'),
        ("tests/c.py::test_name", "家长张伟来电"),
        ("tests/d.py::test_clean", '{"route": "/v1/agreements/{agreement_id}/extract", "status": 200}'),
    ]
    findings = _logscan.scan(records, seeded)
    found = {(f.where, f.kind, f.line) for f in findings}
    assert found == {
        ("tests/a.py::test_key", "API key (secret part)", 1),
        ("tests/b.py::test_id", "national id", 2),
        ("tests/b.py::test_id", "phone", 2),
        ("tests/c.py::test_name", "name", 1),
    }
    report = "\n".join(map(str, findings))
    assert secret_part[:16] not in report and "11010519491231002X" not in report  # a prefix and the length only
    assert "'1101…' (18 chars)" in report


def test_master_key_forms_are_seeded() -> None:
    raw = secrets.token_bytes(32)
    seeded = _logscan.Needles()
    _logscan.register_bytes(raw, "master key", into=seeded)
    forms = (raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode())
    for form in forms:
        assert [kind for _, _, kind in seeded.find(f"key={form[:20]} end")] == ["master key"]


def test_capture_sees_structlog_and_stdlib_output() -> None:
    # letters only, so the scrubber leaves it alone; not registered, so the session scan does not fail on it
    planted = "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz") for _ in range(24))
    mark = len(_logscan.capture.chunks)
    get_logger("gateway.selftest").info("logscan_selftest", note=planted)
    logging.getLogger("gateway.selftest").debug("stdlib %s", planted)
    captured = _logscan.capture.chunks[mark:]
    assert sum(planted in text for _, text in captured) == 2
    assert {where for where, _ in captured} == {"tests/test_logscan.py::test_capture_sees_structlog_and_stdlib_output"}
    seeded = _logscan.Needles()
    seeded.add(planted, "planted")
    assert [f.kind for f in _logscan.scan(captured, seeded)] == ["planted"]


def test_registry_fixture_and_issued_keys_are_seeded(registry_path: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(registry_path)
    national_id, phone, name = conn.execute(
        "SELECT national_id, guardian_phone, name FROM child_registry ORDER BY child_id DESC LIMIT 1"
    ).fetchone()
    conn.close()
    assert national_id in _logscan.needles and phone in _logscan.needles and name in _logscan.needles
    # every API key issued in-process is seeded, wherever it is issued
    from gateway.auth import PrincipalStore
    from gateway.db import create_gateway_engine, init_schema

    engine = create_gateway_engine(f"sqlite:///{tmp_path / 'g.db'}")
    init_schema(engine)
    key = PrincipalStore(engine, b"k" * 32).create("logscan-selftest", {"requester"})
    engine.dispose()
    assert key[:16] in _logscan.needles and key.split("_", 2)[2][:16] in _logscan.needles
