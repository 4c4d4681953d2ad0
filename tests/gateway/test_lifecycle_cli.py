"""The lifecycle from the command line and the demo: apply, approve, state, versions, schema, key rotation."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.cli.main import main
from gateway.keystore import SqlKeyStore
from keys import KeyDestroyedError, KeyRing, MasterKey, SecretBytes, load_master_key, wrap_key
from policies.schema import agreement_schema
from tests.conftest import demo_agreement_texts
from tests.gateway.harness import Env

RESEARCH = demo_agreement_texts()["research-continuity.yaml"]


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    directory = tmp_path / "deploy"
    assert main(["demo", "--rows", "60", "--data-dir", str(directory), "--no-serve"]) == 0
    return directory


def rows(directory: Path, query: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(f"sqlite:///{directory / 'gateway.db'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def credentials(directory: Path) -> dict[str, str]:
    return {c["principal"]: c["api_key"] for c in json.loads((directory / "credentials.json").read_text())}


def run_as(capsys: pytest.CaptureFixture[str], api_key: str, *argv: str) -> tuple[int, str]:
    return run(capsys, *argv, "--api-key", api_key)


def test_the_demo_puts_its_agreements_in_force_with_four_eyes(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    states = rows(demo, "SELECT agreement_id, state, author, approved_by FROM agreement_versions ORDER BY 1")
    assert [s[0] for s in states] == ["finance-subsidy", "public-statistics", "research-continuity", "school-transfer"]
    assert {s[1:] for s in states} == {("active", "registry-admin", "approver-li")}
    # Reusing the folder changes nothing.
    before = rows(demo, "SELECT COUNT(*) FROM log_entries")
    assert main(["demo", "--data-dir", str(demo), "--no-serve"]) == 0
    assert rows(demo, "SELECT COUNT(*) FROM log_entries") == before
    code, out = run(capsys, "agreements", "versions", "research-continuity", "--data-dir", str(demo))
    assert code == 0 and "v2 active" in out and "approved by approver-li" in out


def test_the_served_gateway_uses_the_database_agreements(demo: Path) -> None:
    import anyio
    import httpx

    from gateway.settings import settings_for
    from gateway.web.app import create_app
    from gateway.wiring import build_services

    credentials = {c["principal"]: c["api_key"] for c in json.loads((demo / "credentials.json").read_text())}
    services = build_services(settings_for(demo, None))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            # Not the research extract: k-anonymity rightly refuses every extract of 60 children.
            return await client.post(
                "/v1/agreements/finance-subsidy/extract",
                headers={"Authorization": f"Bearer {credentials['finance-bureau']}"},
                json={"limit": 2},
            )

    try:
        response = anyio.run(go)
    finally:
        services.close()
    assert response.status_code == 200, response.text
    approver = rows(demo, "SELECT approved_by FROM disclosures")
    assert approver == [("approver-li",)]


def test_apply_approve_state_from_the_cli(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The demo put v2 in force; v3 drops a column, v4 is a draft that is never approved.
    v2 = demo / "v3.yaml"
    v2.write_text(
        RESEARCH.replace("version: 2", "version: 3")
        .replace("  status:          keep\n", "")
        .replace("filterable: [status]", "filterable: []")  # no longer released, so no longer filterable
    )
    d = ["--data-dir", str(demo)]
    code, out = run(capsys, "agreements", "apply", str(v2), "--as", "registry-admin", *d)
    assert code == 0 and "research-continuity v3 stored as draft" in out and "next: gateway agreements approve" in out
    approve = ["agreements", "approve", "research-continuity", "--version"]
    code, out = run(capsys, *approve, "3", "--as", "registry-admin", *d)
    assert code == 1 and "role approver" in out
    assert main(["principals", "add", "both-hats", "--roles", "admin,approver", *d]) == 0
    v3 = demo / "v4.yaml"
    v3.write_text(RESEARCH.replace("version: 2", "version: 4"))
    assert run(capsys, "agreements", "apply", str(v3), "--as", "both-hats", *d)[0] == 0
    code, out = run(capsys, *approve, "4", "--as", "both-hats", *d)
    assert code == 1 and "four eyes" in out
    code, out = run(capsys, *approve, "3", "--as", "approver-li", *d)
    assert code == 0 and "now active" in out
    assert "risk after k-anonymity" in out and "catalog threshold: prosecutor risk <= 0.2" in out
    code, out = run(capsys, "agreements", "state", "research-continuity", "suspended", "--as", "registry-admin", *d)
    assert code == 0 and "is now suspended" in out
    code, out = run(capsys, "agreements", "state", "research-continuity", "revoked", "--reason", "ended", *d)
    assert code == 2 and "--as" in out  # two admins now: the CLI asks which one
    code, out = run(
        capsys, "agreements", "state", "research-continuity", "revoked", "--as", "registry-admin", "--reason", "x", *d
    )
    assert code == 2 and "needs a second person" in out and "gateway actions request" in out  # one admin alone: no
    assert rows(
        demo, "SELECT state FROM agreement_versions WHERE agreement_id = 'research-continuity' AND version = 3"
    ) == [("suspended",)]
    keys = credentials(demo)
    code, out = run_as(
        capsys,
        keys["registry-admin"],
        "actions",
        "request",
        "agreement.revoke",
        "--agreement",
        "research-continuity",
        "--reason",
        "ended",
        *d,
    )
    assert code == 0 and "pending" in out, out
    action_id = out.split()[0]
    code, out = run_as(capsys, keys["registry-admin"], "actions", "confirm", action_id, *d)
    assert code == 1 and "four eyes" in out  # the requester cannot confirm their own request
    code, out = run_as(capsys, keys["approver-li"], "actions", "confirm", action_id, *d)
    assert code == 0 and "executed" in out and "confirmed by approver-li" in out
    code, out = run_as(capsys, keys["approver-li"], "actions", "confirm", action_id, *d)
    assert code == 1 and "already executed" in out  # a replayed confirmation
    code, out = run(capsys, "agreements", "versions", "research-continuity", *d)
    assert "v2 superseded" in out and "v3 revoked" in out and "v4 draft" in out
    assert rows(demo, "SELECT COUNT(*) FROM wrapped_keys WHERE owner = 'domain:pku-study'") == [(0,)]


def test_apply_reports_invalid_files(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = demo / "bad.yaml"
    bad.write_text(RESEARCH.replace("limits:", "limitz:"))
    code, out = run(capsys, "agreements", "apply", str(bad), "--as", "registry-admin", "--data-dir", str(demo))
    assert code == 1 and "limitz" in out and str(bad) in out


def test_check_validates_against_the_schema_too(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = demo / "bad.yaml"
    bad.write_text(RESEARCH.replace("dataset: children", "dataset: children\nowner: someone"))
    code, out = run(capsys, "agreements", "check", str(bad), "--data-dir", str(demo))
    assert code == 1
    assert "unknown key 'owner'" in out and "[schema]" in out and f"{bad}:" in out
    code, out = run(capsys, "agreements", "check", str(demo / "agreements"), "--data-dir", str(demo))
    assert code == 0 and "[schema]" not in out


def test_schema_command_prints_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "agreements", "schema")
    assert code == 0 and json.loads(out) == agreement_schema()


def test_rotate_a_key(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.db import create_gateway_engine

    d = ["--data-dir", str(demo)]
    code, out = run(capsys, "keys", "rotate", "domain:pku-study", *d)
    assert code == 2 and "no key yet" in out
    engine = create_gateway_engine(f"sqlite:///{demo / 'gateway.db'}")
    KeyRing(load_master_key(demo / "master.key"), SqlKeyStore(engine)).current("domain:pku-study")  # first use
    engine.dispose()
    code, out = run(capsys, "keys", "rotate", "domain:pku-study", *d)
    assert code == 0 and "version 2 is now current" in out and "differ" in out
    code, out = run(capsys, "keys", "rotate", "log:signing", *d)
    assert code == 2 and "only agreement:" in out
    (entry,) = [json.loads(b) for (b,) in rows(demo, "SELECT body FROM log_entries WHERE kind = 'keys.rotated'")]
    assert entry["owner"] == "domain:pku-study" and entry["version"] == 2


def test_rotate_the_master_key(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.db import create_gateway_engine

    old = load_master_key(demo / "master.key")
    engine = create_gateway_engine(f"sqlite:///{demo / 'gateway.db'}")
    token_key = KeyRing(old, SqlKeyStore(engine)).derive("domain:pku-study", "tokenize").reveal()
    engine.dispose()
    d = ["--data-dir", str(demo)]
    code, out = run(capsys, "keys", "rotate-master", *d)
    assert code == 2 and "needs a second person" in out and load_master_key(demo / "master.key") == old
    keys = credentials(demo)
    code, out = run_as(capsys, keys["registry-admin"], "actions", "request", "keys.rotate_master", *d)
    assert code == 0, out
    action_id = out.split()[0]
    code, out = run(capsys, "keys", "rotate-master", "--action", action_id, *d)
    assert code == 1 and "second person" in out and load_master_key(demo / "master.key") == old  # unconfirmed
    # Someone with database access marks a request confirmed: the log has no confirmation, so nothing runs.
    engine = create_gateway_engine(f"sqlite:///{demo / 'gateway.db'}")
    with engine.begin() as conn:
        forged = "f" * 32
        conn.execute(
            sa.text(
                "INSERT INTO pending_actions (id, action, requested_by, requested_at, expires_at, state, confirmed_by, "
                "confirmed_at) SELECT :f, action, requested_by, requested_at, expires_at, 'confirmed', 'approver-li', "
                "requested_at FROM pending_actions WHERE id = :a"
            ),
            {"f": forged, "a": action_id},
        )
    engine.dispose()
    code, out = run(capsys, "keys", "rotate-master", "--action", forged, *d)
    assert code == 1 and "no action.confirmed entry" in out and load_master_key(demo / "master.key") == old
    code, out = run_as(capsys, keys["approver-li"], "actions", "confirm", action_id, *d)
    assert code == 0 and "confirmed" in out and f"rotate-master --action {action_id}" in out
    code, out = run(capsys, "keys", "rotate-master", "--action", action_id, *d)
    assert code == 0, out
    new = load_master_key(demo / "master.key")
    assert new != old and "re-wrapped" in out
    (backup,) = demo.glob("master.key.old-*")
    assert load_master_key(backup) == old and stat.S_IMODE(os.stat(backup).st_mode) == 0o600
    (entry,) = [json.loads(b) for (b,) in rows(demo, "SELECT body FROM log_entries WHERE kind = 'keys.master_rotated'")]
    assert entry["dual_control"] == {
        "action_id": action_id,
        "requested_by": "registry-admin",
        "confirmed_by": "approver-li",
    }
    code, out = run(capsys, "keys", "rotate-master", "--action", action_id, *d)
    assert code == 1 and "already executed" in out and load_master_key(demo / "master.key") == new  # run once
    assert old.key_id not in {json.loads(w)["master_key_id"] for (w,) in rows(demo, "SELECT wrapped FROM wrapped_keys")}
    engine = create_gateway_engine(f"sqlite:///{demo / 'gateway.db'}")
    try:
        assert KeyRing(new, SqlKeyStore(engine)).derive("domain:pku-study", "tokenize").reveal() == token_key
    finally:
        engine.dispose()
    # The forged "confirmed" row is named by verify (the requests table is rebuilt from the log) ...
    code, out = run(capsys, "log", "verify", "--data-dir", str(demo))
    assert code == 1 and f"pending_actions row ({forged})" in out and "inserted" in out, out
    engine = create_gateway_engine(f"sqlite:///{demo / 'gateway.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM pending_actions WHERE id = :f"), {"f": forged})
    engine.dispose()
    # ... and without it the log verifies (the signing key was re-wrapped, not replaced) and the rotation is in it:
    # the executed request replays from action.requested, action.confirmed and keys.master_rotated.
    code, out = run(capsys, "log", "verify", "--data-dir", str(demo))
    assert code == 0, out
    assert rows(demo, "SELECT COUNT(*) FROM log_entries WHERE kind = 'keys.master_rotated'") == [(1,)]


def test_sql_key_store_destroy_and_tombstone(env: Env) -> None:
    store = SqlKeyStore(env.engine)
    master = MasterKey(SecretBytes(bytes(range(32))))
    ring = KeyRing(master, store)
    ring.current("agreement:x")
    ring.rotate("agreement:x")
    assert store.destroy("agreement:x") == 2
    assert store.versions("agreement:x") == [] and store.is_destroyed("agreement:x")
    assert store.destroy("agreement:x") == 0  # idempotent
    with pytest.raises(KeyDestroyedError):
        store.put(wrap_key(master, SecretBytes.generate(), owner="agreement:x", version=3))
    assert store.versions("agreement:x") == []  # the refused insert was rolled back
    with pytest.raises(KeyDestroyedError):
        KeyRing(master, store).current("agreement:x")
    assert not store.is_destroyed("agreement:y")
