"""Witnessed checkpoints (C2SP tlog-witness / tlog-cosignature), attack first.

The attack of issue 15: someone with database access deletes the last entries with the later checkpoints and
rebuilds the tree tables; the log then verifies "OK" on its own. With witnesses — real ``gateway witness serve``
processes with their own keys and state — the truncation, a split view and a forged cosignature are detected.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml

from gateway.audit.log import DisclosureStart, SqlDisclosureLog
from gateway.audit.reader import build_receipt
from gateway.cli.main import main
from gateway.services import Services
from gateway.settings import settings_for
from gateway.web.app import create_app
from gateway.web.routes.compliance import reader
from gateway.wiring import build_services
from gateway.witness.server import witness_app
from gateway.witness.state import KEY_FILE, WitnessRefusal, WitnessState, init_witness, parse_log_vkeys
from keys import SigningKey
from tests.gateway.witness_support import WitnessProcess
from tlog import (
    Checkpoint,
    MemoryTree,
    TreeAppender,
    format_add_checkpoint,
    format_verifier_key,
    leaf_hash,
    parse_size_body,
    root_at,
    sign_checkpoint,
    verify_cosignatures,
)
from tlog import consistency_proof as memory_consistency_proof

EM_DASH = "\u2014"


# -- the witness on its own (in process, through its real Starlette app) --------------------------------------------
class _Key:
    def __init__(self) -> None:
        self.key = SigningKey.generate()

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    def key_hash(self, name: str) -> bytes:
        from tlog import ed25519_key_hash

        return ed25519_key_hash(name, self.key.public_key.raw)


ORIGIN = "registry.example/log"


def _signed(key: _Key, tree: MemoryTree, size: int, origin: str = ORIGIN) -> str:
    return sign_checkpoint(Checkpoint(origin, size, root_at(tree, size)), origin, key)


def _tree(n: int, salt: bytes = b"") -> MemoryTree:
    return MemoryTree(leaf_hash(salt + b"%d" % i) for i in range(n))


@pytest.fixture
def log_key() -> _Key:
    return _Key()


@pytest.fixture
def witness_dir(tmp_path: Path) -> Path:
    init_witness(tmp_path / "w", "authority.example/w1")
    return tmp_path / "w"


def _post(state: WitnessState, body: bytes) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=witness_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://w.test") as client:
            return await client.post("/add-checkpoint", content=body)

    return anyio.run(run)


def test_init_makes_a_private_key_and_never_overwrites_it(tmp_path: Path) -> None:
    vkey = init_witness(tmp_path / "w", "authority.example/w1")
    assert (tmp_path / "w" / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert vkey.startswith("authority.example/w1+") and base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04
    before = (tmp_path / "w" / KEY_FILE).read_bytes()
    seed = json.loads(before)["seed"]
    state = WitnessState(tmp_path / "w", {})
    assert seed not in repr(state) and "redacted" in repr(state) and state.vkey == vkey
    state.close()
    assert main(["witness", "init", "--state", str(tmp_path / "w"), "--name", "other"]) == 2
    assert (tmp_path / "w" / KEY_FILE).read_bytes() == before
    (tmp_path / "w" / KEY_FILE).chmod(0o644)
    with pytest.raises(Exception, match="owner only"):
        WitnessState(tmp_path / "w", {})
    assert main(["witness", "init", "--state", str(tmp_path / "x"), "--name", "bad name"]) == 2


def test_witness_answers_as_the_spec_says(witness_dir: Path, log_key: _Key) -> None:
    tree = _tree(30)
    vkey = format_verifier_key(ORIGIN, log_key.key.public_key.raw)
    state = WitnessState(witness_dir, parse_log_vkeys([vkey]))
    try:
        first = _post(state, format_add_checkpoint(0, [], _signed(log_key, tree, 10)))
        assert first.status_code == 200 and first.text.startswith(f"{EM_DASH} authority.example/w1 ")
        from gateway.audit.cosignatures import cosigner_from_vkey

        found, problems = verify_cosignatures(_signed(log_key, tree, 10) + first.text, [cosigner_from_vkey(state.vkey)])
        assert len(found) == 1 and not problems
        # growth with a proof: cosigned
        proof = memory_consistency_proof(tree, 10, 20)
        assert _post(state, format_add_checkpoint(10, proof, _signed(log_key, tree, 20))).status_code == 200
        # a client that lags: 409 with the witness's size, as text/x.tlog.size
        stale = _post(state, format_add_checkpoint(10, proof, _signed(log_key, tree, 20)))
        assert stale.status_code == 409 and stale.headers["content-type"].startswith("text/x.tlog.size")
        assert parse_size_body(stale.content) == 20
        # truncation: a smaller checkpoint is never cosigned again
        assert _post(state, format_add_checkpoint(0, [], _signed(log_key, tree, 15))).status_code == 409
        # split view: another tree of size 20, correctly signed by the log's key
        forked = _tree(20, b"fork")
        split = _post(state, format_add_checkpoint(20, [], _signed(log_key, forked, 20)))
        assert split.status_code == 409 and parse_size_body(split.content) == 20
        # a fork that grows: the proof from 20 does not verify
        fork30 = MemoryTree([*(tree.get(0, i) for i in range(12)), *(leaf_hash(b"y%d" % i) for i in range(18))])
        bad = _post(
            state, format_add_checkpoint(20, memory_consistency_proof(fork30, 20, 30), _signed(log_key, fork30, 30))
        )
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        # a checkpoint signed by another key, an unknown origin, malformed bodies
        assert _post(state, format_add_checkpoint(20, [], _signed(_Key(), tree, 20))).status_code == 403
        assert (
            _post(state, format_add_checkpoint(0, [], _signed(log_key, tree, 5, "other.example/log"))).status_code
            == 404
        )
        assert _post(state, b"old 1\n\nnot a note").status_code == 400
        assert _post(state, b"old 0\n\n" + b"x" * 70_000).status_code == 413
        assert state.head(ORIGIN) is not None and state.head(ORIGIN).size == 20  # type: ignore[union-attr]
        refused = state._db.execute("SELECT status FROM refusals ORDER BY id").fetchall()
        # evidence kept (truncation, split view, bad proof), not the lagging client nor what never reached the state
        assert [r[0] for r in refused] == [409, 409, 422]
        for _ in range(3):  # replaying a public checkpoint does not grow the table
            _post(state, format_add_checkpoint(0, [], _signed(log_key, tree, 15)))
        assert state._db.execute("SELECT count(*) FROM refusals").fetchone()[0] == 3
    finally:
        state.close()
    # a restart keeps the state: the size-15 checkpoint is still refused, growth from 20 still accepted
    state = WitnessState(witness_dir, parse_log_vkeys([vkey]))
    try:
        assert state.head(ORIGIN).size == 20  # type: ignore[union-attr]
        assert _post(state, format_add_checkpoint(0, [], _signed(log_key, tree, 15))).status_code == 409
        proof = memory_consistency_proof(tree, 20, 30)
        assert _post(state, format_add_checkpoint(20, proof, _signed(log_key, tree, 30))).status_code == 200
    finally:
        state.close()


# -- the gateway with real witness processes --------------------------------------------------------------------------
def _start(i: int) -> DisclosureStart:
    return DisclosureStart(
        f"w{i}", "req", "pku-education-lab", "research-continuity", 1, "sha256:x", "li", "basis", "research", "extract",
        {"fields": [], "filters": []},
    )  # fmt: skip


def _log_vkey(directory: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["log", "vkey", "--data-dir", str(directory)]) == 0
    return capsys.readouterr().out.strip()


def _configure(directory: Path, witnesses: list[WitnessProcess], quorum: int) -> None:
    path = directory / "gateway.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["witnesses"] = [w.config() for w in witnesses]
    raw["witness_quorum"] = quorum
    path.write_text(yaml.safe_dump(raw))


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _witnessed(services: Services) -> bool:
    assert services.witnessing is not None
    status = services.witnessing.status()
    return bool(status["head_size"] and status["witnessed_size"] == status["head_size"])


def _disclose(services: Services, first: int, count: int) -> None:
    log = services.log
    assert isinstance(log, SqlDisclosureLog)
    for i in range(first, first + count):
        log.start(_start(i))
        log.finish(f"w{i}", status="completed", rows=i, nbytes=10 * i, sha256="ab" * 32)
    log.checkpoint()
    if services.witnessing is not None:
        services.witnessing.wake()


@pytest.fixture
def deployment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[Path, list[WitnessProcess]]]:
    directory = tmp_path / "deploy"
    assert main(["demo", "--rows", "50", "--data-dir", str(directory), "--no-serve"]) == 0
    vkey = _log_vkey(directory, capsys)
    witnesses = [
        WitnessProcess(tmp_path / "authority", "education-authority.example/witness", vkey).start(),
        WitnessProcess(tmp_path / "auditor", "audit-office.example/witness", vkey).start(),
    ]
    _configure(directory, witnesses, quorum=2)
    try:
        yield directory, witnesses
    finally:
        for w in witnesses:
            w.stop()


def _truncate(directory: Path, keep: int) -> None:
    """The attack: delete entries ≥ keep with the later checkpoints, cosignatures and projections, and rebuild the
    tree tables (nodes, head, border) from the remaining public leaf hashes."""
    conn = sqlite3.connect(directory / "gateway.db")
    with conn:
        conn.execute("DELETE FROM log_entries WHERE seq >= ?", (keep,))
        conn.execute("DELETE FROM log_checkpoints WHERE size > ?", (keep,))
        conn.execute("DELETE FROM checkpoint_cosignatures WHERE size > ?", (keep,))
        conn.execute("DELETE FROM disclosures WHERE start_seq >= ? OR finish_seq >= ?", (keep, keep))
        conn.execute("DELETE FROM log_nodes")
        appender = TreeAppender()
        for (leaf,) in conn.execute("SELECT leaf_hash FROM log_entries ORDER BY seq").fetchall():
            for node in appender.append(bytes.fromhex(leaf)):
                conn.execute(
                    "INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)",
                    (node.level, node.index, node.hash.hex()),
                )
        border = json.dumps([n.hash.hex() for n in appender.border])
        conn.execute("UPDATE log_head SET size = ?, border = ? WHERE id = 1", (appender.size, border))
    conn.close()


def _verify(directory: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["log", "verify", "--data-dir", str(directory), *extra])
    return code, capsys.readouterr().out


def _api_key(directory: Path, role: str) -> str:
    creds = json.loads((directory / "credentials.json").read_text())
    return next(c["api_key"] for c in creds if role in c["roles"])


def test_truncation_is_detected_by_real_witnesses(
    deployment: tuple[Path, list[WitnessProcess]], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, witnesses = deployment
    services = build_services(settings_for(directory, None))
    try:
        _disclose(services, 0, 4)
        _wait(lambda: _witnessed(services), "the first checkpoint to be witnessed")
        keep = reader(services).latest_checkpoint()[0]  # type: ignore[index]
        _disclose(services, 4, 6)
        _wait(lambda: _witnessed(services), "the second checkpoint to be witnessed")
        head = reader(services).latest_checkpoint()
        assert head is not None and head[0] > keep
        # The head as served: the log's signature plus both witnesses' cosignatures (GET /v1/log/checkpoint).
        app = create_app(services)

        async def fetch() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
                auth = {"Authorization": f"Bearer {_api_key(directory, 'compliance')}"}
                return (
                    await client.get("/v1/log/checkpoint", headers=auth),
                    await client.get("/v1/log/vkey"),
                    await client.get("/v1/log/witnesses", headers=auth),
                )

        checkpoint, vkey, status = anyio.run(fetch)
        assert vkey.status_code == 200 and vkey.text.strip() == witnesses[0].log_vkey
        from gateway.audit.cosignatures import cosigner_from_vkey

        found, problems = verify_cosignatures(
            checkpoint.json()["note"], [cosigner_from_vkey(w.vkey) for w in witnesses]
        )
        assert len(found) == 2 and not problems and checkpoint.json()["size"] == head[0]
        assert status.json()["witnessed_size"] == head[0]
        assert {w["state"] for w in status.json()["witnesses"].values()} == {"ok"}
    finally:
        services.close()
    assert _verify(directory, capsys)[0] == 0

    _truncate(directory, keep)
    # Without witnesses the cut log verifies: the gap the issue describes.
    code, out = _verify(directory, capsys, "--no-witnesses")
    assert code == 0, out
    # The witnesses have cosigned the larger size: asked, they show it.
    code, out = _verify(directory, capsys)
    assert code == 1 and "TAMPERED" in out
    assert f"truncated: witness education-authority.example/witness has cosigned size {head[0]}" in out
    assert "audit-office.example/witness" in out

    # The gateway keeps working on the cut log; its new checkpoints are refused and raise the alarm.
    services = build_services(settings_for(directory, None))
    try:
        _disclose(services, 10, 2)
        assert services.witnessing is not None
        _wait(
            lambda: (
                {w["state"] for w in services.witnessing.status()["witnesses"].values()}  # type: ignore[union-attr]
                <= {"conflict", "inconsistent"}
            ),
            "the witnesses to refuse the cut log",
        )
        status = services.witnessing.status()
        assert status["witnessed_size"] <= keep and status["head_size"] > keep
        assert status["unwitnessed_for_s"] is not None
        # with the quorum, the head that counts is still the last witnessed one, not the new unwitnessed one
        assert reader(services).latest_checkpoint()[0] <= keep  # type: ignore[index]
    finally:
        services.close()


def test_split_view_refused_and_witness_restart_keeps_state(
    deployment: tuple[Path, list[WitnessProcess]], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, witnesses = deployment
    services = build_services(settings_for(directory, None))
    try:
        _disclose(services, 0, 3)
        _wait(lambda: _witnessed(services), "witnessing")
        size, note = reader(services).latest_checkpoint()  # type: ignore[misc]
        signer = services.signer
        assert signer is not None
        origin = note.split("\n", 1)[0]
        # Someone with the log's key signs a second tree of the same size (a view for one victim only).
        other = sign_checkpoint(Checkpoint(origin, size, bytes(32)), origin, signer)
        witnesses[0].stop()
        witnesses[0].start()  # a restart in between: the state is on disk
        for w in witnesses:
            answer = httpx.post(w.url + "/add-checkpoint", content=format_add_checkpoint(size, [], other))
            assert answer.status_code == 409 and parse_size_body(answer.content) == size
            # a client that does not know the witness's size (old 0) learns it from the 409
            again = httpx.post(w.url + "/add-checkpoint", content=format_add_checkpoint(0, [], _bare(note)))
            assert again.status_code == 409 and parse_size_body(again.content) == size
        # The honest checkpoint, resubmitted from its own size, is cosigned again.
        assert (
            httpx.post(
                witnesses[0].url + "/add-checkpoint", content=format_add_checkpoint(size, [], _bare(note))
            ).status_code
            == 200
        )
    finally:
        services.close()


def _bare(note: str) -> str:
    """The note with only its first signature line (the log's), as the gateway stores it."""
    text, _, sigs = note.rpartition("\n\n")
    return text + "\n\n" + sigs.split("\n")[0] + "\n"


def test_witnesses_down_do_not_block_disclosures_and_receipts_carry_cosignatures(
    deployment: tuple[Path, list[WitnessProcess]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, witnesses = deployment
    services = build_services(settings_for(directory, None))
    try:
        _disclose(services, 0, 2)
        _wait(lambda: _witnessed(services), "witnessing")
        log_reader = reader(services)
        # through the real app, as compliance fetches it
        app = create_app(services)

        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
                auth = {"Authorization": f"Bearer {_api_key(directory, 'compliance')}"}
                return await client.get("/v1/disclosures/w1/receipt", headers=auth)

        answer = anyio.run(fetch)
        assert answer.status_code == 200
        receipt = answer.json()
        for w in witnesses:
            w.stop()
        _disclose(services, 2, 3)  # the witnesses are down: disclosures go on
        assert services.witnessing is not None
        _wait(
            lambda: {w["state"] for w in services.witnessing.status()["witnesses"].values()} == {"unreachable"},  # type: ignore[union-attr]
            "the collector to notice",
        )
        assert not _witnessed(services)
        late = build_receipt(services.log, log_reader, log_reader.disclosure("w3"))
    finally:
        services.close()
    (tmp_path / "log.pub").write_text((directory / "log.pub").read_text())
    vkeys = [arg for w in witnesses for arg in ("--witness-vkey", w.vkey)]

    def check(data: dict[str, Any], *extra: str) -> tuple[int, str]:
        (tmp_path / "r.json").write_text(json.dumps(data))
        capsys.readouterr()
        code = main(["receipt", "verify", str(tmp_path / "r.json"), "--public-key", str(tmp_path / "log.pub"), *extra])
        return code, capsys.readouterr().out

    code, out = check(receipt, *vkeys, "--quorum", "2")
    assert code == 0 and "cosigned by" in out, out
    # a forged cosignature: one byte of a witness's signature changed
    lines = receipt["checkpoint"].split("\n")
    i = next(n for n, line in enumerate(lines) if line.startswith(f"{EM_DASH} {witnesses[0].name} "))
    raw = bytearray(base64.b64decode(lines[i].split(" ")[2]))
    raw[-1] ^= 1
    lines[i] = f"{EM_DASH} {witnesses[0].name} {base64.b64encode(bytes(raw)).decode()}"
    code, out = check({**receipt, "checkpoint": "\n".join(lines)}, *vkeys, "--quorum", "2")
    assert code == 1 and "does not verify" in out
    # a key that is not the witness's (same name): its cosignature does not count
    impostor = init_witness(tmp_path / "impostor", witnesses[0].name)
    code, out = check(receipt, "--witness-vkey", impostor, "--quorum", "1")
    assert code == 1 and "0 valid witness cosignatures, 1 needed" in out
    # the receipt signed while the witnesses were down is valid, but not witnessed
    assert late is not None
    assert check(late)[0] == 0
    code, out = check(late, *vkeys, "--quorum", "1")
    assert code == 1 and "not witnessed" in out
    # with the witnesses down, the log cannot be confirmed against the quorum: not "OK"; offline it verifies
    code, out = _verify(directory, capsys)
    assert code == 1 and "only 0 of the 2 witnesses needed confirmed the log's head" in out
    assert "unreachable" in out
    assert _verify(directory, capsys, "--no-witnesses")[0] == 0


def test_collector_retries_from_the_size_the_witness_names(deployment: tuple[Path, list[WitnessProcess]]) -> None:
    """A process that does not know the witnesses' sizes (here: its stored cosignatures are gone) submits from 0,
    gets 409 with the size, and catches up with a proof from there: cosigned, no alarm."""
    directory, _ = deployment
    services = build_services(settings_for(directory, None))
    try:
        _disclose(services, 0, 3)
        _wait(lambda: _witnessed(services), "witnessing")
        first = reader(services).latest_checkpoint()[0]  # type: ignore[index]
    finally:
        services.close()
    conn = sqlite3.connect(directory / "gateway.db")
    with conn:
        conn.execute("DELETE FROM checkpoint_cosignatures")
    conn.close()
    services = build_services(settings_for(directory, None))
    try:
        _disclose(services, 3, 3)
        _wait(lambda: _witnessed(services), "witnessing after the 409")
        status = services.witnessing.status()  # type: ignore[union-attr]
        assert status["witnessed_size"] > first
        assert {w["state"] for w in status["witnesses"].values()} == {"ok"}
    finally:
        services.close()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"witnesses": {"name": "x"}}, "witnesses: expected a list"),
        ({"witnesses": [{"name": "a", "url": "http://w"}]}, "witnesses[0]: expected exactly the keys"),
        ({"witnesses": [{"name": "a", "url": "ftp://w", "vkey": "x"}]}, "witnesses[0].url"),
        ({"witnesses": [{"name": "a", "url": "http://w", "vkey": "a+00000000+AAAA"}]}, "witnesses[0].vkey"),
        ({"witness_quorum": 1}, "witness_quorum: expected an integer between 0 and 0"),
    ],
)
def test_wrong_witness_settings_stop_the_start(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    from gateway.errors import ConfigError
    from gateway.settings import load_settings

    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"registry_url": "sqlite:///r.db", "database_url": "sqlite:///g.db", **entry}))
    with pytest.raises(ConfigError, match=str(path)) as exc:
        load_settings(path)
    assert message in str(exc.value)


def test_a_log_vkey_is_not_a_witness_vkey(tmp_path: Path, log_key: _Key) -> None:
    from gateway.errors import ConfigError
    from gateway.settings import load_settings

    log_vkey = format_verifier_key("a.example/w", log_key.key.public_key.raw)  # type 0x01, the log's kind
    path = tmp_path / "gateway.yaml"
    witness = {"name": "a.example/w", "url": "http://w", "vkey": log_vkey}
    path.write_text(
        yaml.safe_dump({"registry_url": "sqlite:///r.db", "database_url": "sqlite:///g.db", "witnesses": [witness]})
    )
    with pytest.raises(ConfigError, match="expected Ed25519 cosignature/v1"):
        load_settings(path)


def _race(states: list[WitnessState], bodies: list[bytes]) -> list[int]:
    """Submit ``bodies[i]`` through ``states[i]`` at the same moment; the statuses."""
    import threading

    results = [0, 0]
    barrier = threading.Barrier(len(bodies))

    def submit(i: int) -> None:
        barrier.wait()
        try:
            states[i].add_checkpoint(bodies[i])
            results[i] = 200
        except WitnessRefusal as exc:
            results[i] = exc.status

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_submissions_never_roll_the_state_back(witness_dir: Path, log_key: _Key) -> None:
    """The race tlog-witness warns of: A (size n) and B (size n + k) both from the same old size, at once, through
    two state objects on one folder (two witness processes). Exactly one is cosigned; the state is that one's."""
    tree = _tree(100)
    vkey = format_verifier_key(ORIGIN, log_key.key.public_key.raw)
    states = [WitnessState(witness_dir, parse_log_vkeys([vkey])) for _ in range(2)]
    try:
        old = 0
        for round_ in range(12):
            sizes = (old + 1 + round_ % 3, old + 3 + round_ % 4)
            bodies = []
            for n in sizes:
                proof = memory_consistency_proof(tree, old, n) if old else []
                bodies.append(format_add_checkpoint(old, proof, _signed(log_key, tree, n)))
            results = _race(states, bodies)
            assert sorted(results) == [200, 409], results
            winner = sizes[results.index(200)]
            head = states[1].head(ORIGIN)
            assert head is not None and head.size == winner > old
            old = winner
    finally:
        for st in states:
            st.close()


@pytest.mark.postgres
def test_collection_and_quorum_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    """The collector, the quorum query and the status on PostgreSQL, with a real witness process."""
    from sqlmodel import SQLModel

    from gateway.audit.reader import LogReader
    from gateway.audit.signer import LogSigner
    from gateway.audit.witnessing import WitnessCollector
    from gateway.db import create_gateway_engine, init_schema
    from gateway.witness_config import WitnessConfig
    from tlog import parse_vkey

    engine = create_gateway_engine(postgres_url)
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as conn:  # the schema is re-created by its migrations, 0004 included
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    init_schema(engine)
    key = SigningKey.generate()
    log = SqlDisclosureLog(engine, signer=LogSigner(key), origin=ORIGIN)
    witness = WitnessProcess(tmp_path / "w", "authority.example/w1", format_verifier_key(ORIGIN, key.public_key.raw))
    witness.start()
    config = WitnessConfig(witness.name, witness.url, parse_vkey(witness.vkey))
    collector = WitnessCollector(engine, [config], quorum=1, interval_s=0.2).start()
    try:
        for i in range(3):
            log.start(_start(i))
            log.finish(f"w{i}", status="completed", rows=i, nbytes=i, sha256=None)
        log.checkpoint()
        _wait(lambda: collector.status()["witnessed_size"] == collector.status()["head_size"] > 0, "witnessing")
        quorum_reader = LogReader(engine, witnesses=[witness.name], quorum=1)
        size, note = quorum_reader.latest_checkpoint()  # type: ignore[misc]
        from gateway.audit.cosignatures import cosigner_from_vkey

        assert size == 6 and len(verify_cosignatures(note, [cosigner_from_vkey(witness.vkey)])[0]) == 1
        assert quorum_reader.checkpoint_covering(2)[0] == 6  # type: ignore[index]
        witness.stop()
        log.start(_start(9))
        log.checkpoint()
        _wait(lambda: collector.status()["witnesses"][witness.name]["state"] == "unreachable", "the outage")
        status = collector.status()
        assert status["head_size"] == 7 and status["witnessed_size"] == 6 and status["unwitnessed_for_s"] is not None
        assert quorum_reader.latest_checkpoint()[0] == 6  # type: ignore[index]
    finally:
        collector.close()
        log.close()
        witness.stop()
        engine.dispose()
