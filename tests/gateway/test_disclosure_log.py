"""The tamper-evident log: concurrent appends, Merkle tree, checkpoints, tamper detection, receipts, compliance API."""

from __future__ import annotations

import base64
import json
import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.log import DisclosureStart, EntryParts, MemoryDisclosureLog, SqlDisclosureLog
from gateway.audit.receipts import verify_receipt
from gateway.audit.signer import LogSigner, LogVerifier
from gateway.audit.verify import verify_log
from gateway.cli.main import main
from gateway.db import create_gateway_engine, init_schema
from keys import SecretBytes, SigningKey
from policies import Catalog
from tests.gateway.harness import Env, build_env, sqlite_url
from tlog import MemoryTree, leaf_hash
from tlog.canonical import canonical_json

RESEARCH = "/v1/agreements/research-continuity/extract"


def _start(i: int | str, principal: str = "pku-education-lab") -> DisclosureStart:
    return DisclosureStart(
        f"d{i}",
        "req",
        principal,
        "research-continuity",
        1,
        "sha256:x",
        "li",
        "basis",
        "research",
        "extract",
        {"fields": [], "filters": []},
    )


# -- appends ----------------------------------------------------------------------------------------------------------
def _append_many(url: str, prefix: str, count: int) -> None:
    engine = create_gateway_engine(url)
    # The same signing key in every process, as gateway processes sharing one database have.
    signer = LogSigner(SigningKey.from_seed(SecretBytes(b"\x07" * 32)))
    log = SqlDisclosureLog(engine, signer=signer, checkpoint_every=7)
    try:
        for i in range(count):
            log.start(_start(f"{prefix}-{i}"))
            log.finish(f"d{prefix}-{i}", status="completed", rows=i, nbytes=i, sha256=None)
    finally:
        log.close()
        engine.dispose()


def _check_contiguous(engine: sa.Engine, expected: int) -> None:
    with engine.connect() as conn:
        seqs = [r[0] for r in conn.execute(sa.text("SELECT seq FROM log_entries ORDER BY seq"))]
        bodies = [r[0] for r in conn.execute(sa.text("SELECT body FROM log_entries ORDER BY seq"))]
        head = conn.execute(sa.text("SELECT size FROM log_head")).scalar_one()
        root_nodes = {(r[0], r[1]): r[2] for r in conn.execute(sa.text("SELECT level, idx, hash FROM log_nodes"))}
    assert seqs == list(range(expected))
    assert head == expected
    assert [json.loads(b)["index"] for b in bodies] == seqs
    tree = MemoryTree([leaf_hash(b.encode()) for b in bodies])
    for (level, idx), node in root_nodes.items():
        assert tree.get(level, idx).hex() == node


def test_threads_append_without_gaps_or_duplicates(tmp_path: Path) -> None:
    engine = create_gateway_engine(sqlite_url(tmp_path / "g.db"))
    init_schema(engine)
    log = SqlDisclosureLog(engine)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                log.start(_start(f"{n}-{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert not errors
    _check_contiguous(engine, 200)
    engine.dispose()


def _processes_append(url: str, tmp_path: Path) -> None:
    engine = create_gateway_engine(url)
    init_schema(engine)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(url, f"p{n}", 30)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    _check_contiguous(engine, 4 * 30 * 2)
    verifier = LogVerifier(SigningKey.from_seed(SecretBytes(b"\x07" * 32)).public_key)
    report = verify_log(engine, verifier)
    assert report.ok, report.problems
    assert report.checkpoints >= 1
    engine.dispose()


@pytest.mark.slow
def test_processes_append_sqlite(tmp_path: Path) -> None:
    _processes_append(sqlite_url(tmp_path / "g.db"), tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_append_postgres(postgres_url: str, tmp_path: Path) -> None:
    from sqlmodel import SQLModel

    engine = create_gateway_engine(postgres_url)
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as conn:  # the schema is re-created by its migrations
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    _processes_append(postgres_url, tmp_path)


def test_log_failure_fails_closed(catalog: Catalog, registry_path: Path, tmp_path: Path) -> None:
    import anyio

    failing = MemoryDisclosureLog()
    failing.failing = True
    from gateway.connectors import SqlConnector

    connector = SqlConnector(sqlite_url(registry_path))
    queried: list[Any] = []
    original = connector.stream
    connector.stream = lambda plan, batch_rows: queried.append(plan) or original(plan, batch_rows=batch_rows)  # type: ignore[method-assign]
    env = build_env(catalog, sqlite_url(tmp_path / "g.db"), connector=connector, log=failing)

    async def run() -> httpx.Response:
        async with env.client() as client:
            return await client.post(RESEARCH, headers=env.auth("research"), json={})

    response = anyio.run(run)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "nothing was released" in response.json()["detail"]
    assert queried == []
    env.services.close()


# -- tamper detection through the CLI ---------------------------------------------------------------------------------
@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    directory = tmp_path / "deploy"
    assert main(["demo", "--rows", "50", "--data-dir", str(directory), "--no-serve"]) == 0
    # The demo build logs its agreements' approvals; start from an empty log so that the entry numbers below are
    # those of this fixture's disclosures. The agreement tables go too: verify rebuilds them from those entries.
    conn = _db(directory)
    with conn:
        derived = ("agreement_versions", "agreement_risk_acceptances", "privacy_budgets")
        for table in ("log_entries", "log_nodes", "log_checkpoints", *derived):
            conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        conn.execute("UPDATE log_head SET size = 0, border = '[]'")
    conn.close()
    from gateway.settings import settings_for
    from gateway.wiring import build_services

    services = build_services(settings_for(directory, None))
    log = services.log
    assert isinstance(log, SqlDisclosureLog)
    for i in range(10):
        log.start(_start(i))
        log.finish(f"d{i}", status="completed", rows=i, nbytes=10 * i, sha256="ab" * 32)
        if i % 3 == 2:
            log.checkpoint()
    log.checkpoint()
    services.close()
    return directory


def _db(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(directory / "gateway.db")


def _verify(directory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["log", "verify", "--data-dir", str(directory)])
    return code, capsys.readouterr().out


def test_untampered_log_verifies(deployment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _verify(deployment, capsys)
    assert code == 0, out
    assert "20 entries" in out and "signed checkpoints" in out


def _edit_byte(conn: sqlite3.Connection) -> None:
    body = conn.execute("SELECT body FROM log_entries WHERE seq = 7").fetchone()[0]
    conn.execute("UPDATE log_entries SET body = ? WHERE seq = 7", (body.replace('"rows":3', '"rows":4'),))


def _edit_and_rehash(conn: sqlite3.Connection) -> None:
    import hashlib

    body = conn.execute("SELECT body FROM log_entries WHERE seq = 7").fetchone()[0].replace('"rows":3', '"rows":4')
    leaf = hashlib.sha256(b"\x00" + body.encode()).hexdigest()
    conn.execute("UPDATE log_entries SET body = ?, leaf_hash = ? WHERE seq = 7", (body, leaf))
    conn.execute("UPDATE log_nodes SET hash = ? WHERE level = 0 AND idx = 7", (leaf,))


def _delete(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM log_entries WHERE seq = 5")


def _insert(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO log_entries (seq, kind, disclosure_id, body, leaf_hash, created_at) "
        "SELECT 20, kind, disclosure_id, body, leaf_hash, created_at FROM log_entries WHERE seq = 3"
    )


def _swap(conn: sqlite3.Connection) -> None:
    a = conn.execute("SELECT body, leaf_hash FROM log_entries WHERE seq = 2").fetchone()
    b = conn.execute("SELECT body, leaf_hash FROM log_entries WHERE seq = 4").fetchone()
    conn.execute("UPDATE log_entries SET body = ?, leaf_hash = ? WHERE seq = 2", b)
    conn.execute("UPDATE log_entries SET body = ?, leaf_hash = ? WHERE seq = 4", a)


def _bad_signature(conn: sqlite3.Connection) -> None:
    note = conn.execute("SELECT note FROM log_checkpoints ORDER BY size LIMIT 1").fetchone()[0]
    head, _, sig = note.rstrip("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 1
    conn.execute(
        "UPDATE log_checkpoints SET note = ? WHERE size = (SELECT MIN(size) FROM log_checkpoints)",
        (f"{head} {base64.b64encode(bytes(raw)).decode()}\n",),
    )


def _truncate(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM log_entries WHERE seq >= 17")
    conn.execute("UPDATE log_head SET size = 17")


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        pytest.param(_edit_byte, "entry 7", id="edit-byte"),
        pytest.param(_edit_and_rehash, "entry before", id="edit-and-rehash"),
        pytest.param(_delete, "entry 5", id="delete"),
        pytest.param(_insert, "entry 20", id="insert"),
        pytest.param(_swap, "entry 2", id="swap"),
        pytest.param(_bad_signature, "signature invalid", id="checkpoint-signature"),
        pytest.param(_truncate, "truncated", id="truncate"),
    ],
)
def test_tampering_is_detected(
    deployment: Path, capsys: pytest.CaptureFixture[str], tamper: Any, expected: str
) -> None:
    conn = _db(deployment)
    with conn:
        tamper(conn)
    conn.close()
    code, out = _verify(deployment, capsys)
    assert code == 1
    assert "TAMPERED" in out
    assert expected in out


# -- HTTP: receipts, checkpoints, compliance ------------------------------------------------------------------------


async def _extract(env: Env, who: str = "research", body: dict[str, Any] | None = None) -> httpx.Response:
    async with env.client() as client:
        return await client.post(RESEARCH, headers=env.auth(who), json=body or {"limit": 5})


def _verifier(env: Env) -> LogVerifier:
    log = env.services.log
    assert isinstance(log, SqlDisclosureLog) and log.signer is not None
    public = log.signer.public_key  # type: ignore[attr-defined]
    return LogVerifier(public)


@pytest.mark.anyio
async def test_receipt_verifies_offline_and_any_change_breaks_it(
    env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await _extract(env)
    disclosure_id = response.headers["x-disclosure-id"]
    async with env.client() as client:
        receipt = (await client.get(f"/v1/disclosures/{disclosure_id}/receipt", headers=env.auth("research"))).json()
        other = await client.get(f"/v1/disclosures/{disclosure_id}/receipt", headers=env.auth("finance"))
        pem = (await client.get("/v1/log/public-key")).text
    assert other.status_code == 404
    assert [json.loads(e["entry"])["type"] for e in receipt["entries"]] == ["disclosure.started", "disclosure.finished"]
    verifier = LogVerifier.from_pem(pem)
    report = verify_receipt(receipt, verifier, content=response.content)
    assert report.ok, report.problems
    assert not verify_receipt(receipt, verifier, content=response.content + b"x").ok
    # CLI
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    (tmp_path / "log.pub").write_text(pem)
    (tmp_path / "content").write_bytes(response.content)
    assert (
        main(
            [
                "receipt",
                "verify",
                str(tmp_path / "receipt.json"),
                "--public-key",
                str(tmp_path / "log.pub"),
                "--content",
                str(tmp_path / "content"),
            ]
        )
        == 0
    )
    assert "receipt OK" in capsys.readouterr().out
    text = json.dumps(receipt)
    # Change single characters across the whole receipt: every change must be caught.
    positions = range(0, len(text), max(1, len(text) // 150))
    for position in positions:
        char = text[position]
        replacement = "1" if char != "1" else "2"
        if char in '{}[]":, \\':
            continue
        changed = text[:position] + replacement + text[position + 1 :]
        try:
            tampered = json.loads(changed)
        except ValueError:
            continue
        assert not verify_receipt(tampered, verifier).ok, f"change at {position} not detected"


@pytest.mark.anyio
async def test_checkpoint_and_consistency(env: Env) -> None:
    for _ in range(3):
        await _extract(env)
    log = env.services.log
    assert isinstance(log, SqlDisclosureLog)
    log.checkpoint()
    async with env.client() as client:
        cp = (await client.get("/v1/log/checkpoint", headers=env.auth("research"))).json()
        size = cp["size"]
        proof = await client.get(f"/v1/log/proof/consistency?first=2&second={size}", headers=env.auth("research"))
        bad = await client.get("/v1/log/proof/consistency?first=5&second=2", headers=env.auth("research"))
        unauth = await client.get("/v1/log/checkpoint")
    assert size == 6
    assert cp["note"].startswith("test.example/log\n6\n")
    assert proof.status_code == 200 and len(proof.json()["proof"]) >= 1
    assert bad.status_code == 422
    assert unauth.status_code == 401


@pytest.mark.anyio
async def test_compliance_api(env: Env, registry_path: Path) -> None:
    child_id, student, limit = env.first_enrolled_released(registry_path)
    first = await _extract(env, body={"limit": limit})
    async with env.client() as client:
        school = await client.post(
            "/v1/agreements/school-transfer/extract",
            headers=env.auth("school"),
            json={"filters": {"student_number": {"eq": student}}},
        )
        assert school.status_code == 200 and len(school.text.splitlines()) == 1
        listing = (await client.get("/v1/disclosures", headers=env.auth("compliance"))).json()
        assert [d["recipient"] for d in listing["disclosures"]] == ["receiving-school", "pku-education-lab"]
        only_school = (
            await client.get("/v1/disclosures?principal=receiving-school", headers=env.auth("compliance"))
        ).json()
        assert len(only_school["disclosures"]) == 1
        page = (await client.get("/v1/disclosures?limit=1", headers=env.auth("compliance"))).json()
        assert len(page["disclosures"]) == 1 and page["next_cursor"]
        page2 = (
            await client.get(f"/v1/disclosures?limit=1&cursor={page['next_cursor']}", headers=env.auth("compliance"))
        ).json()
        assert page2["disclosures"][0]["id"] == first.headers["x-disclosure-id"]
        mine = (await client.get("/v1/disclosures?principal=receiving-school", headers=env.auth("research"))).json()
        assert [d["recipient"] for d in mine["disclosures"]] == ["pku-education-lab"]
        entry = (
            await client.get(f"/v1/disclosures/{first.headers['x-disclosure-id']}", headers=env.auth("compliance"))
        ).json()
        assert entry["approved_by"] == "li.ming@registry.example"
        assert entry["legal_basis"].startswith("Ethics approval")
        assert {f["name"] for f in entry["description"]["fields"]} >= {"child_id", "birth_date"}
        accounting = (
            await client.post("/v1/subjects/disclosures", headers=env.auth("compliance"), json={"subject_id": child_id})
        ).json()
        recipients = sorted(d["recipient"] for d in accounting["disclosures"])
        assert recipients == ["pku-education-lab", "receiving-school"]
        assert all(d["purpose"] and d["legal_basis"] and d["approved_by"] for d in accounting["disclosures"])
        nobody = (
            await client.post(
                "/v1/subjects/disclosures", headers=env.auth("compliance"), json={"subject_id": "C99999999"}
            )
        ).json()
        assert nobody["count"] == 0
        refused = await client.post(
            "/v1/subjects/disclosures", headers=env.auth("research"), json={"subject_id": child_id}
        )
        assert refused.status_code == 403
        totals = (await client.get("/v1/disclosures/totals", headers=env.auth("compliance"))).json()
        by_agreement = {t["agreement"]: t for t in totals["agreements"]}
        assert by_agreement["research-continuity"]["rows"] == limit
        assert by_agreement["research-continuity"]["subjects"] == limit
        export = await client.get("/v1/disclosures/export?format=csv", headers=env.auth("compliance"))
        assert export.status_code == 200 and export.text.splitlines()[0].startswith("id,started_at")
        assert len(export.text.splitlines()) == 3
        nd = await client.get("/v1/disclosures/export?format=ndjson", headers=env.auth("compliance"))
        assert len(nd.text.splitlines()) == 2
        bad = await client.get("/v1/disclosures?status=deleted", headers=env.auth("compliance"))
        assert bad.status_code == 422
        bad_cursor = await client.get("/v1/disclosures?cursor=!!", headers=env.auth("compliance"))
        assert bad_cursor.status_code == 422
    # the log itself holds no raw subject id
    assert all(child_id not in body and student not in body for body in env.log_bodies())


def test_verify_without_key_is_not_ok(tmp_path: Path) -> None:
    engine = create_gateway_engine(sqlite_url(tmp_path / "g.db"))
    init_schema(engine)
    report = verify_log(engine, None)
    assert not report.ok and "no public key" in report.problems[0]
    engine.dispose()


_ENTRY_KEYS = st.sampled_from(["type", "time", "agreement", "a", "indey", "indexa", "z", "disclosure_id", "rows"])
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@given(entry=st.dictionaries(_ENTRY_KEYS, _VALUES, max_size=6), index=st.integers(0, 2**53 - 1))
def test_entry_parts_splice_the_index_exactly_where_canonical_json_puts_it(entry: dict[str, Any], index: int) -> None:
    # The writer splices the index into JSON serialized beforehand in the caller's thread: byte for byte what
    # serializing the whole entry gives, or the leaf hashes (and every receipt) would change.
    assert EntryParts(entry).body(index) == canonical_json({"index": index, **entry})
