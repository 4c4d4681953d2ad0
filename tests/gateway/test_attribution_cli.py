"""`gateway attribute FILE` and `gateway attribute verify` on a demo deployment, with a real extract served by the
deployment's own app: exit codes, what is printed (no identifier), the signed statement and its tampering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cli.main import main
from tests import _logscan

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("attribute") / "deploy"
    assert main(["demo", "--rows", "200", "--data-dir", str(directory), "--no-serve"]) == 0
    _logscan.register_registry(directory / "registry.db")
    return directory


async def finance_extract(directory: Path) -> tuple[str, str]:
    from gateway.settings import settings_for
    from gateway.web.app import create_app
    from gateway.wiring import build_services

    credentials = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))
    key = next(c["api_key"] for c in credentials if c["principal"] == "finance-bureau")
    services = build_services(settings_for(directory, None))
    try:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            response = await client.post(
                "/v1/agreements/finance-subsidy/extract",
                json={"format": "csv"},
                headers={"Authorization": f"Bearer {key}"},
            )
    finally:
        services.close()
    assert response.status_code == 200, response.text
    return response.headers["X-Disclosure-Id"], response.text


def no_identifiers(text: str) -> None:
    found = list(_logscan.needles.find(text))
    assert not found, f"a {found[0][2]} was printed"


async def test_attribute_names_the_disclosure_and_the_statement_verifies(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    disclosure, text = await finance_extract(demo_dir)
    lines = text.splitlines()
    leak = tmp_path / "leak.csv"
    # The recipient keeps half the rows and re-saves with semicolons.
    leak.write_text("\n".join(line.replace(",", ";") for line in lines[: len(lines) // 2]) + "\n", encoding="utf-8")
    statement = tmp_path / "statement.json"
    args = ["attribute", str(leak), "--data-dir", str(demo_dir), "--statement", str(statement)]
    assert main([*args, "--requested-by", "compliance-officer", "--reason", "case 7"]) == 0
    out = capsys.readouterr().out
    assert f"attributed to 1 disclosure(s): {disclosure}" in out and "recipient finance-bureau" in out
    no_identifiers(out)
    no_identifiers(statement.read_text(encoding="utf-8"))

    pub = str(demo_dir / "log.pub")
    assert main(["attribute", "verify", str(statement), "--public-key", pub, "--content", str(leak)]) == 0
    out = capsys.readouterr().out
    assert "statement OK: attribution by compliance-officer" in out and f"disclosure {disclosure}" in out

    doc: dict[str, Any] = json.loads(statement.read_text(encoding="utf-8"))
    doc["entries"] = [e for e in doc["entries"] if '"disclosure.started"' not in e["entry"]]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["attribute", "verify", str(forged), "--public-key", pub]) == 1
    assert "statement INVALID" in capsys.readouterr().out
    assert main(["log", "verify", "--data-dir", str(demo_dir)]) == 0  # the attribution events are sound entries


def test_a_file_nobody_released_is_no_disclosure_exit_0(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leak = tmp_path / "random.ndjson"
    leak.write_text("".join(json.dumps({"id": f"tok{n:019d}", "g": "F"}) + "\n" for n in range(50)), encoding="utf-8")
    assert main(["attribute", str(leak), "--data-dir", str(demo_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "no disclosure" and report["disclosures"] == []
    assert isinstance(report["log_index"], int)  # logged all the same


def test_usage_errors(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attribute", str(tmp_path / "missing.csv"), "--data-dir", str(demo_dir)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["attribute", "verify", str(tmp_path / "s.json")]) == 2
    assert "--public-key" in capsys.readouterr().err


def test_no_report_without_its_log_entry(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: when the event cannot be logged, nothing is printed but the error (exit 2)."""
    import gateway.controls.attribution as attribution
    from gateway.errors import AuditUnavailableError

    def down(*args: object, **kwargs: object) -> None:
        raise AuditUnavailableError("the disclosure log is not writable")

    monkeypatch.setattr(attribution, "record_attribution", down)
    leak = tmp_path / "leak.ndjson"
    leak.write_text('{"id": "x"}\n', encoding="utf-8")
    assert main(["attribute", str(leak), "--data-dir", str(demo_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "attribution not done: the disclosure log is not writable" in captured.err
