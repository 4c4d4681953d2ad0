"""The `gateway` command line: agreements check, demo build, keys init, principals, log verify."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.cli.main import main
from tests.conftest import demo_agreement_texts, demo_files


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo") / "deploy"
    assert main(["demo", "--rows", "200", "--data-dir", str(directory), "--no-serve"]) == 0
    return directory


def test_demo_builds_a_complete_deployment(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in (
        "registry.db",
        "catalog.yaml",
        "agreements",
        "gateway.yaml",
        "master.key",
        "gateway.db",
        "credentials.json",
        "log.pub",
    ):
        assert (demo_dir / name).exists(), name
    assert stat.S_IMODE(os.stat(demo_dir / "master.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(demo_dir / "credentials.json").st_mode) == 0o600
    credentials = json.loads((demo_dir / "credentials.json").read_text())
    assert {c["principal"] for c in credentials} >= {"pku-education-lab", "compliance-officer", "finance-bureau"}
    for entry in credentials:
        assert set(entry) == {"principal", "roles", "api_key", "agreements"}
        assert entry["api_key"].startswith("dxg_")
    # the database holds hashes, never the keys
    engine = sa.create_engine(f"sqlite:///{demo_dir / 'gateway.db'}")
    with engine.connect() as conn:
        dump = " ".join(str(r) for r in conn.execute(sa.text("SELECT * FROM api_keys")))
    engine.dispose()
    for entry in credentials:
        secret = entry["api_key"][len("dxg_") + 17 :]
        assert len(secret) == 43
        assert entry["api_key"] not in dump and secret not in dump


def test_demo_reuses_existing_folder(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.name: p.read_bytes() for p in demo_dir.iterdir() if p.is_file() and p.suffix != ".db"}
    assert main(["demo", "--data-dir", str(demo_dir), "--no-serve"]) == 0
    out = capsys.readouterr().out
    assert "Reusing" in out
    assert "curl" in out and "research-continuity/extract" in out
    after = {p.name: p.read_bytes() for p in demo_dir.iterdir() if p.is_file() and p.suffix != ".db"}
    assert before == after


def test_demo_with_a_rebuilt_gateway_database_issues_keys_that_work(tmp_path: Path) -> None:
    from gateway.auth import PrincipalStore
    from gateway.db import create_gateway_engine
    from keys import KeyRing, load_master_key

    directory = tmp_path / "deploy"
    assert main(["demo", "--rows", "50", "--data-dir", str(directory), "--no-serve"]) == 0
    old = json.loads((directory / "credentials.json").read_text())
    for path in directory.glob("gateway.db*"):
        path.unlink()  # the gateway's state is rebuilt; the old credentials.json opens nothing any more
    assert main(["demo", "--data-dir", str(directory), "--no-serve"]) == 0
    new = json.loads((directory / "credentials.json").read_text())
    assert [e["principal"] for e in new] == [e["principal"] for e in old]
    assert all(a["api_key"] != b["api_key"] for a, b in zip(old, new, strict=True))
    engine = create_gateway_engine(f"sqlite:///{directory / 'gateway.db'}")
    try:
        from gateway.keystore import SqlKeyStore

        ring = KeyRing(load_master_key(directory / "master.key"), SqlKeyStore(engine))
        store = PrincipalStore(engine, ring.derive("server:api-keys", "api-key-hash").reveal(), cache_ttl=0)
        assert all(store.authenticate(e["api_key"]) is not None for e in new)
    finally:
        engine.dispose()


def test_agreements_check_ok_and_errors(demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agreements", "check", str(demo_dir / "agreements"), "--data-dir", str(demo_dir)]) == 0
    out = capsys.readouterr().out
    assert "0 error(s)" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(next(iter(demo_agreement_texts().values())).replace("keep", "kept", 1))
    assert main(["agreements", "check", str(bad), "--catalog", str(demo_files() / "catalog.yaml")]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:" in out and "unknown operator 'kept'" in out
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(
        demo_agreement_texts()["research-continuity.yaml"].replace("national_id:     drop", "national_id:     keep")
    )
    assert main(["agreements", "check", str(leaky), "--catalog", str(demo_files() / "catalog.yaml")]) == 1
    assert "identifier-to-research" in capsys.readouterr().out


def test_keys_init_is_idempotent(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (demo_dir / "master.key").read_bytes()
    assert main(["keys", "init", "--data-dir", str(demo_dir)]) == 0
    assert "exists" in capsys.readouterr().out
    assert (demo_dir / "master.key").read_bytes() == before


def test_master_key_permissions_checked(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = demo_dir / "master.key"
    os.chmod(path, 0o644)
    try:
        assert main(["principals", "add", "extra-user", "--roles", "requester", "--data-dir", str(demo_dir)]) == 2
        err = capsys.readouterr().err
        assert "chmod 600" in err
        assert path.read_text().split()[-1] not in err
    finally:
        os.chmod(path, 0o600)


def test_principals_add_prints_key_once(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["principals", "add", "new-partner", "--roles", "requester", "--data-dir", str(demo_dir)]) == 0
    assert "dxg_" in capsys.readouterr().out
    assert main(["principals", "add", "bad", "--roles", "emperor", "--data-dir", str(demo_dir)]) == 2


def test_log_verify_ok_after_disclosures(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.audit.log import DisclosureStart
    from gateway.settings import settings_for
    from gateway.wiring import build_services

    services = build_services(settings_for(demo_dir, None))
    # The demo build itself logs its agreements' applications and approvals.
    with services.log.engine.connect() as conn:  # type: ignore[attr-defined]
        before = conn.execute(sa.text("SELECT COUNT(*) FROM log_entries")).scalar_one()
    try:
        for i in range(3):
            services.log.start(
                DisclosureStart(
                    f"d{i}",
                    "r",
                    "pku-education-lab",
                    "research-continuity",
                    1,
                    "sha256:x",
                    "a",
                    "b",
                    "research",
                    "extract",
                    {"fields": []},
                )
            )
            services.log.finish(f"d{i}", status="completed", rows=1, nbytes=2, sha256="00")
        log = services.log
        assert hasattr(log, "checkpoint")
        log.checkpoint()
    finally:
        services.close()
    assert main(["log", "verify", "--data-dir", str(demo_dir)]) == 0
    out = capsys.readouterr().out
    assert f"log OK: {before + 6} entries" in out


def test_missing_deployment_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "verify", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "gateway demo" in capsys.readouterr().err


def test_fresh_demo_says_created_not_reusing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--rows", "50", "--data-dir", str(tmp_path / "fresh"), "--no-serve"]) == 0
    out = capsys.readouterr().out
    assert "Created: registry.db" in out
    assert "Reusing" not in out


def _principal_created_entries(demo_dir: Path) -> list[dict[str, object]]:
    engine = sa.create_engine(f"sqlite:///{demo_dir / 'gateway.db'}")
    try:
        with engine.connect() as conn:
            bodies = conn.execute(sa.text("SELECT body FROM log_entries ORDER BY seq")).scalars().all()
    finally:
        engine.dispose()
    return [e for e in (json.loads(b) for b in bodies) if e.get("type") == "principal.created"]


def test_a_principal_made_on_the_host_is_a_signed_log_entry(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The insider's side door: an operator makes a second approver to confirm their own dual-control request. It
    stays possible on the host (who holds the master key), but never unseen: the creation is logged first."""
    assert main(["principals", "add", "sock-puppet", "--roles", "approver,admin", "--data-dir", str(demo_dir)]) == 0
    key = capsys.readouterr().out.split("API key (shown once, store it now): ")[1].strip()
    created = [e for e in _principal_created_entries(demo_dir) if e["principal"] == "sock-puppet"]
    assert len(created) == 1 and created[0]["roles"] == ["admin", "approver"]
    assert str(created[0]["by"]).startswith("operator:")
    assert key not in json.dumps(created)  # the key itself is never logged
    assert main(["log", "verify", "--data-dir", str(demo_dir), "--no-witnesses"]) == 0
    # a name taken, or bad roles: refused before anything is logged
    before = len(_principal_created_entries(demo_dir))
    assert main(["principals", "add", "sock-puppet", "--roles", "approver", "--data-dir", str(demo_dir)]) == 2
    assert main(["principals", "add", "x-y", "--roles", "emperor", "--data-dir", str(demo_dir)]) == 2
    assert len(_principal_created_entries(demo_dir)) == before


def test_no_principal_when_its_creation_cannot_be_logged(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.audit.log import SqlDisclosureLog

    def refuse(self: object, entry: object) -> int:
        raise RuntimeError("log unwritable")

    monkeypatch.setattr(SqlDisclosureLog, "append_event", refuse)
    with pytest.raises(RuntimeError, match="log unwritable"):
        main(["principals", "add", "unlogged-admin", "--roles", "admin", "--data-dir", str(demo_dir)])
    engine = sa.create_engine(f"sqlite:///{demo_dir / 'gateway.db'}")
    try:
        with engine.connect() as conn:
            names = conn.execute(sa.text("SELECT name FROM principals")).scalars().all()
    finally:
        engine.dispose()
    assert "unlogged-admin" not in names
