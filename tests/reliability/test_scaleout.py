"""Scale-out: three gateway instances on one PostgreSQL gateway database, under concurrent load from another process.

One ``gateway serve --workers 2`` and two single-process instances share one deployment folder (gateway.yaml,
master.key, catalog, agreements) and one PostgreSQL gateway database. A separate load process (this module run as
``python -m tests.reliability.test_scaleout CONFIG.json OUT.json``) sends single-record lookups, small extracts,
aggregates, verifications and requests that must be refused, round-robin over the three ports, and writes every
response down. Afterwards: no 5xx; the one log verifies and its indexes are 0..n-1; every disclosure a response names
is in the log, completed, with the bytes and SHA-256 the client received; the entries added are exactly the
responses' disclosures (started + finished) and nothing else; every instance (and both workers of the two-worker one)
served requests; the agreement quota counted from the shared database held across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import io
import itertools
import json
import os
import secrets
import signal
import socket
import sqlite3
import string
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
CLIENTS = 12
LOAD_SECONDS = 6.0
ROWS = 5000
#: finance-subsidy keeps its demo quota of 10 requests per minute: it is what the load hits to get 429s
FINANCE_PER_MINUTE = 10
#: The demo quotas of the other agreements would turn the load into 429s after a few dozen requests; the deployment
#: the test builds lifts them (the files are written before ``gateway demo`` runs, which then applies them).
_LIFTED_LIMITS = {
    "research-continuity.yaml": (
        "limits: {requests_per_minute: 30, rows_per_day: 20000000, max_rows_per_request: 5000000}",
        "limits: {max_rows_per_request: 5000000}",
    ),
    "public-statistics.yaml": ("limits: {requests_per_minute: 30}\n", ""),
    "school-transfer.yaml": (
        "limits: {requests_per_minute: 60, rows_per_day: 2000, max_rows_per_request: 10}",
        "limits: {max_rows_per_request: 10}",
    ),
}
#: The demo research agreement's k = 5 classes withhold 11% of 5,000 children, so every extract would be refused
#: (it is meant for registries of 20,000 and more); the deployment coarsens it as tests/conftest.py coarse_research.
_COARSER = {
    "research-continuity.yaml": (
        ("residence_code:  {generalize: {prefix: 2}}", "residence_code:  drop"),
        ("enrollment_date: {generalize: year}", "enrollment_date: drop"),
        (
            "quasi_identifiers: [birth_date, gender, residence_code, enrollment_date]",
            "quasi_identifiers: [birth_date, gender]",
        ),
    )
}
#: request kinds of the load, cycled; their count (10) is coprime with the 3 ports, so every port gets every kind
KINDS = (
    "record",
    "extract",
    "aggregate",
    "record_miss",
    "extract_csv",
    "verify",
    "refused_filter",
    "refused_party",
    "refused_key",
    "refused_dimension",
)
EXPECTED_STATUS: dict[str, frozenset[int]] = {
    "record": frozenset({200}),
    "extract": frozenset({200}),
    "aggregate": frozenset({200}),
    "record_miss": frozenset({404}),  # a lookup that found nothing: still a logged disclosure (0 rows)
    "extract_csv": frozenset({200}),
    "verify": frozenset({200, 429}),  # 429 once the shared per-minute quota is used up
    "refused_filter": frozenset({422}),
    "refused_party": frozenset({403}),
    "refused_key": frozenset({401, 429}),  # 429 once this address has too many failed keys (gateway/throttle.py)
    "refused_dimension": frozenset({422}),
}
DISCLOSING = frozenset({"record", "extract", "aggregate", "record_miss", "extract_csv", "verify"})
EXTRACT_LIMIT = 20
CSV_LIMIT = 10


# -- the load process ---------------------------------------------------------------------------------------------
def _request(kind: str, n: int, cfg: dict[str, Any]) -> tuple[str, str, str, dict[str, Any] | None]:
    """(method, path, api key, JSON body) of the n-th request, of kind ``kind``."""
    keys: dict[str, str] = cfg["keys"]

    def pick(name: str) -> str:
        ids: list[str] = cfg[name]
        return ids[n % len(ids)]

    if kind == "record":
        return "GET", f"/v1/agreements/school-transfer/records/{pick('in_scope')}", keys["school"], None
    if kind == "record_miss":
        return "GET", f"/v1/agreements/school-transfer/records/{pick('out_of_scope')}", keys["school"], None
    if kind == "extract":
        # Filters on status only (version 2); enrolled children are the bulk, so k-anonymity withholds next to none.
        body = {"filters": {"status": {"eq": "enrolled"}}, "limit": EXTRACT_LIMIT}
        return "POST", "/v1/agreements/research-continuity/extract", keys["research"], body
    if kind == "extract_csv":
        body = {"format": "csv", "fields": ["child_id", "birth_date", "gender", "migrant"], "limit": CSV_LIMIT}
        return "POST", "/v1/agreements/research-continuity/extract", keys["research"], body
    if kind == "aggregate":
        group_by = [["gender"], ["migrant", "low_income"], ["birth_date"]][n % 3]
        body = {"group_by": group_by, "measures": ["count"]}
        return "POST", "/v1/agreements/public-statistics/aggregate", keys["stats"], body
    if kind == "verify":
        body = {"subject_id": pick("low_income"), "claims": {"low_income": True}}
        return "POST", "/v1/agreements/finance-subsidy/verify", keys["finance"], body
    if kind == "refused_filter":  # not a filterable field of the agreement
        body = {"filters": {"name": {"eq": "x"}}, "limit": 3}
        return "POST", "/v1/agreements/research-continuity/extract", keys["research"], body
    if kind == "refused_party":  # the research group is no party to the transfer agreement
        return "GET", f"/v1/agreements/school-transfer/records/{pick('in_scope')}", keys["research"], None
    if kind == "refused_key":
        return "GET", f"/v1/agreements/school-transfer/records/{pick('in_scope')}", "dxg_notakey", None
    if kind == "refused_dimension":
        body = {"group_by": ["name"], "measures": ["count"]}
        return "POST", "/v1/agreements/public-statistics/aggregate", keys["stats"], body
    raise ValueError(kind)


async def _client(
    cfg: dict[str, Any], counter: Iterator[int], deadline: float, origin: float, out: list[dict[str, Any]]
) -> None:
    ports: list[int] = cfg["ports"]
    # No keep-alive: every request is a new connection, so the two workers of one instance share the accepts (a
    # kept-alive connection stays with the worker that accepted it).
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        while time.monotonic() < deadline:
            n = next(counter)
            port = ports[n % len(ports)]
            kind = KINDS[n % len(KINDS)]
            method, path, key, body = _request(kind, n, cfg)
            request_id = f"scaleout{n:08d}"
            record: dict[str, Any] = {"n": n, "port": port, "kind": kind, "request_id": request_id}
            started = time.monotonic()
            try:
                response = await client.request(
                    method,
                    f"http://127.0.0.1:{port}{path}",
                    json=body,
                    headers={"Authorization": f"Bearer {key}", "X-Request-Id": request_id},
                )
            except httpx.HTTPError as exc:  # counted as a failure by the test, like a 5xx
                record.update(status=0, error=type(exc).__name__, disclosure_id=None, data=False)
            else:
                content = response.content
                record.update(
                    status=response.status_code,
                    disclosure_id=response.headers.get("x-disclosure-id"),
                    # What the gateway logged for our id: a keyed hash of it, the same in every instance.
                    logged_request_id=response.headers.get("x-request-id"),
                    data=response.status_code == 200 and len(content) > 0,
                    bytes=len(content),
                    sha256=hashlib.sha256(content).hexdigest(),
                    lines=content.count(b"\n"),
                )
            record.update(t0=round(started - origin, 4), t1=round(time.monotonic() - origin, 4))
            out.append(record)


async def drive(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    counter = itertools.count()
    out: list[dict[str, Any]] = []
    origin = time.monotonic()
    deadline = origin + float(cfg["seconds"])
    await asyncio.gather(*(_client(cfg, counter, deadline, origin, out) for _ in range(int(cfg["clients"]))))
    return sorted(out, key=lambda r: int(r["n"]))


def load_main(argv: list[str]) -> int:
    config_path, out_path = argv
    cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
    responses = asyncio.run(drive(cfg))
    Path(out_path).write_text(json.dumps(responses), encoding="utf-8")
    return 0


# -- the deployment and its servers -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def scaleout_db(postgres_url: str) -> Iterator[str]:
    """A database of its own on the test server (created next to the run's database, dropped after)."""
    import sqlalchemy as sa

    admin_url = os.environ["DXG_TEST_POSTGRES_URL"]
    name = f"dxg_scaleout_{os.getpid()}_{secrets.token_hex(4)}"
    admin = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _write_agreements(directory: Path) -> None:
    today = dt.date.today()  # as gateway demo does
    values = {
        "valid_from": dt.date(today.year, 1, 1).isoformat(),
        "valid_until": dt.date(today.year + 1, 12, 31).isoformat(),
    }
    target = directory / "agreements"
    target.mkdir(parents=True)
    for item in (resources.files("gateway.demo") / "files" / "agreements").iterdir():
        text = string.Template(item.read_text(encoding="utf-8")).substitute(values)
        if item.name in _LIFTED_LIMITS:
            old, new = _LIFTED_LIMITS[item.name]
            assert old in text, f"the demo's {item.name} changed its limits; update _LIFTED_LIMITS"
            text = text.replace(old, new)
        for old, new in _COARSER.get(item.name, ()):
            assert old in text, f"the demo's {item.name} changed its fields; update _COARSER"
            text = text.replace(old, new)
        (target / item.name).write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class Deployment:
    directory: Path
    database_url: str
    credentials: dict[str, str]  # principal -> api key


@pytest.fixture
def deployment(tmp_path: Path, scaleout_db: str) -> Deployment:
    """A demo deployment whose gateway state (principals, keys, agreements, log) was moved to PostgreSQL."""
    from gateway.cli.main import main
    from gateway.db.copy import copy_gateway_state

    directory = tmp_path / "deploy"
    directory.mkdir(mode=0o700)
    _write_agreements(directory)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the demo's how-to (with API keys) is not test output
        assert main(["demo", "--rows", str(ROWS), "--data-dir", str(directory), "--no-serve"]) == 0, printed.getvalue()
    copied = copy_gateway_state(f"sqlite:///{directory / 'gateway.db'}", scaleout_db)
    assert copied["principals"] == 7 and copied["log_entries"] > 0
    # Every instance reads the same gateway.yaml: point it at the shared database (as a production deployment does).
    config = directory / "gateway.yaml"
    text = config.read_text(encoding="utf-8")
    assert "database_url: sqlite:///gateway.db\n" in text
    # The load's 12 clients share a few principals: the per-principal extract slots (max_concurrent_extracts, 4 per
    # process) would answer some extracts 429 by design; this test is about the shared log, so it lifts them.
    text = text.replace("sqlite:///gateway.db", scaleout_db) + "max_concurrent_extracts: 64\n"
    config.write_text(text, encoding="utf-8")
    entries = json.loads((directory / "credentials.json").read_text(encoding="utf-8"))
    return Deployment(directory, scaleout_db, {e["principal"]: e["api_key"] for e in entries})


@dataclass
class Server:
    port: int
    workers: int
    proc: subprocess.Popen[bytes]
    output: Path

    def tail(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")[-3000:]


def _clean_env() -> dict[str, str]:
    # gateway.yaml is the one source of settings for every instance: no inherited override.
    return {
        k: v for k, v in os.environ.items() if k not in ("DXG_DATABASE_URL", "DXG_REGISTRY_URL", "DXG_HOST", "DXG_PORT")
    }


def _start(directory: Path, port: int, workers: int, output: Path) -> Server:
    command = [sys.executable, "-m", "gateway.cli.main", "serve", "--data-dir", str(directory), "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    with output.open("wb") as sink:
        # A session of its own: the process group holds the instance and its workers, for the final kill.
        proc = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=_clean_env(), start_new_session=True, cwd=REPO
        )
    return Server(port, workers, proc, output)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing left in the group
        os.killpg(pid, signal.SIGKILL)


def _stop(server: Server) -> bool:
    """SIGTERM (uvicorn's graceful shutdown; a supervisor stops its workers), then SIGKILL to what is left.

    True when it stopped on SIGTERM alone, exiting 0 (a supervisor) or by the re-raised SIGTERM (a single process).
    """
    proc = server.proc
    clean = True
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            clean = False
            _kill_group(proc.pid)
            proc.wait(timeout=10)
    _kill_group(proc.pid)  # workers orphaned by a supervisor that did not stop them
    return clean and proc.returncode in (0, -signal.SIGTERM)


def _wait_healthy(servers: list[Server], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending and time.monotonic() < deadline:
        for server in list(pending):
            if server.proc.poll() is not None:
                raise AssertionError(f"the gateway on port {server.port} exited at start:\n{server.tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{server.port}/readyz", timeout=2).status_code == 200:
                    pending.remove(server)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    assert not pending, f"not ready within {timeout} s: {[s.port for s in pending]}"


@pytest.fixture
def cluster(deployment: Deployment, tmp_path: Path) -> Iterator[list[Server]]:
    servers: list[Server] = []
    try:
        for i, workers in enumerate((2, 1, 1)):
            servers.append(_start(deployment.directory, _free_port(), workers, tmp_path / f"server{i}.log"))
        _wait_healthy(servers)
        yield servers
    finally:
        for server in servers:
            _stop(server)


def _worker_pids(pid: int) -> list[int]:
    """uvicorn's worker processes under a supervisor (multiprocessing spawn children, not its resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# -- the test -----------------------------------------------------------------------------------------------------
def _subjects(directory: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(f"file:{directory / 'registry.db'}?mode=ro", uri=True)
    try:

        def ids(where: str) -> list[str]:
            sql = f"SELECT child_id FROM child_registry WHERE {where} ORDER BY child_id LIMIT 200"  # noqa: S608
            return [str(r[0]) for r in conn.execute(sql)]

        return {
            "in_scope": ids("status IN ('enrolled', 'transferred_out')"),
            "out_of_scope": ids("status IN ('withdrawn', 'graduated')"),
            "low_income": ids("status = 'enrolled' AND low_income = 1"),
        }
    finally:
        conn.close()


def _run_load(deployment: Deployment, servers: list[Server], tmp_path: Path) -> tuple[list[dict[str, Any]], float]:
    creds = deployment.credentials
    cfg = {
        "ports": [s.port for s in servers],
        "clients": CLIENTS,
        "seconds": LOAD_SECONDS,
        "keys": {
            "research": creds["pku-education-lab"],
            "school": creds["receiving-school"],
            "finance": creds["finance-bureau"],
            "stats": creds["stats-bureau"],
        },
        **_subjects(deployment.directory),
    }
    config_path, out_path = tmp_path / "load.json", tmp_path / "responses.json"
    config_path.write_text(json.dumps(cfg), encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.test_scaleout", str(config_path), str(out_path)],
        cwd=REPO,
        capture_output=True,
        timeout=LOAD_SECONDS + 90,
        check=False,
    )
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    responses: list[dict[str, Any]] = json.loads(out_path.read_text(encoding="utf-8"))
    return responses, wall


def _log_state(url: str) -> tuple[int, list[int], list[Any], dict[str, Any]]:
    """(head size, every entry's seq in order, the entries (seq, kind, disclosure_id), disclosures by id)."""
    import sqlalchemy as sa

    from gateway.db import create_gateway_engine

    engine = create_gateway_engine(url)
    try:
        with engine.connect() as conn:
            head = int(conn.execute(sa.text("SELECT size FROM log_head WHERE id = 1")).scalar_one())
            seqs = [int(s) for s in conn.execute(sa.text("SELECT seq FROM log_entries ORDER BY seq")).scalars()]
            entries = list(conn.execute(sa.text("SELECT seq, kind, disclosure_id FROM log_entries ORDER BY seq")))
            disclosures = {
                r.id: r
                for r in conn.execute(
                    sa.text(
                        "SELECT id, request_id, agreement_id, operation, status, rows, bytes, sha256, start_seq,"
                        " finish_seq FROM disclosures"
                    )
                )
            }
    finally:
        engine.dispose()
    return head, seqs, entries, disclosures


def test_three_instances_share_one_log_under_load(
    deployment: Deployment, cluster: list[Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.audit.signer import LogVerifier
    from gateway.audit.verify import verify_log
    from gateway.cli.main import main
    from gateway.db import create_gateway_engine

    supervisor = cluster[0]
    assert supervisor.workers == 2
    on_linux = Path(f"/proc/{supervisor.proc.pid}/task").exists()
    workers = _worker_pids(supervisor.proc.pid) if on_linux else []
    if on_linux:
        assert len(workers) == 2, f"gateway serve --workers 2 runs {len(workers)} worker processes"
    cpu_before = {pid: _cpu_seconds(pid) for pid in workers}
    baseline, _, _, before = _log_state(deployment.database_url)

    responses, wall = _run_load(deployment, cluster, tmp_path)

    cpu_used = {pid: round(_cpu_seconds(pid) - cpu_before[pid], 2) for pid in workers}
    stopped = [_stop(server) for server in cluster]  # the log is final once every writer has stopped
    outputs = "\n".join(f"--- port {s.port} (workers {s.workers})\n{s.tail()}" for s in cluster)
    statuses = Counter((r["kind"], r["status"]) for r in responses)
    duration = max(r["t1"] for r in responses) - min(r["t0"] for r in responses)
    print(  # the figures, for pytest -s and the docs
        f"\nscale-out load: {len(responses)} requests in {duration:.1f} s ({len(responses) / duration:.0f} req/s), "
        f"{CLIENTS} clients, 3 instances (4 processes); load process wall {wall:.1f} s; statuses {dict(statuses)}; "
        f"per port {dict(Counter(r['port'] for r in responses))}; worker CPU {cpu_used}"
    )

    # 1. nothing failed on the server side; every outcome is the one its kind must get
    failures = [r for r in responses if r["status"] >= 500 or r["status"] == 0]
    assert not failures, f"{len(failures)} server errors, e.g. {failures[:5]}\n{outputs}"
    unexpected = [r for r in responses if r["status"] not in EXPECTED_STATUS[r["kind"]]]
    assert not unexpected, f"unexpected statuses: {Counter((r['kind'], r['status']) for r in unexpected)}"
    assert len(responses) >= 100, f"only {len(responses)} requests in {LOAD_SECONDS} s: the load did not run"
    assert all(stopped), f"not stopped cleanly by SIGTERM: {[s.proc.returncode for s in cluster]}\n{outputs}"
    # ... and no process logged an error (a failed log group, an unhandled exception, a failed volume check)
    errors = [
        line
        for s in cluster
        for line in s.output.read_text(encoding="utf-8", errors="replace").splitlines()
        if '"level": "error"' in line or "Traceback" in line
    ]
    assert not errors, "\n".join(errors[:20])

    # 2. every instance served data; both workers of the two-worker instance worked
    served = {r["port"] for r in responses if r["data"]}
    assert served == {s.port for s in cluster}
    for pid, seconds in cpu_used.items():
        assert seconds > 0.05, f"worker {pid} of the two-worker instance did no work ({cpu_used})"

    # 3. a response names a disclosure exactly when its kind discloses and it was not refused
    disclosed = [r for r in responses if r["disclosure_id"]]
    for r in responses:
        assert bool(r["disclosure_id"]) == (r["kind"] in DISCLOSING and r["status"] != 429), r
    ids = [r["disclosure_id"] for r in disclosed]
    assert len(set(ids)) == len(ids), "two responses name the same disclosure"

    # 4. the log: verifies (signatures, tree, checkpoints), indexes 0..n-1 without gaps or duplicates
    head, seqs, entries, disclosures = _log_state(deployment.database_url)
    assert seqs == list(range(head)), "log indexes are not contiguous from 0"
    engine = create_gateway_engine(deployment.database_url)
    try:
        verifier = LogVerifier.from_pem((deployment.directory / "log.pub").read_text(encoding="utf-8"))
        report = verify_log(engine, verifier)
    finally:
        engine.dispose()
    assert report.ok, report.problems
    assert report.entries == head
    assert report.checkpoints >= 1
    for name in ("DXG_DATABASE_URL", "DXG_REGISTRY_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["log", "verify", "--data-dir", str(deployment.directory)]) == 0

    # 5. every disclosure a response names is in the log, completed, with what the client received
    for r in disclosed:
        row = disclosures.get(r["disclosure_id"])
        assert row is not None, f"response {r} names a disclosure the log does not hold"
        assert row.status == "completed", (r, row)
        assert row.request_id == r["logged_request_id"] != r["request_id"], (r, row)
        assert row.start_seq >= baseline and row.finish_seq > row.start_seq, (r, row)
        if r["data"]:
            assert (row.bytes, row.sha256) == (r["bytes"], r["sha256"]), (r, row)
        if r["kind"] == "extract":
            assert row.rows == r["lines"] == EXTRACT_LIMIT, (r, row)
        elif r["kind"] == "record":
            assert row.rows == 1, (r, row)
        elif r["kind"] == "record_miss":
            assert (row.rows, row.bytes) == (0, 0), (r, row)
    assert not [d for d in disclosures.values() if d.status == "started"], "a disclosure was left unfinished"
    assert set(disclosures) == set(before) | set(ids), "disclosures no response accounts for"

    # 6. the entries added are exactly the responses' disclosures, started then finished; nothing else
    added = [e for e in entries if e.seq >= baseline]
    assert len(added) == head - baseline
    by_disclosure: dict[str, list[str]] = {}
    others = []
    for entry in added:
        if entry.disclosure_id is None:
            others.append(entry.kind)
        else:
            by_disclosure.setdefault(entry.disclosure_id, []).append(entry.kind)
    assert set(by_disclosure) == set(ids)
    assert all(kinds == ["disclosure.started", "disclosure.finished"] for kinds in by_disclosure.values())
    assert all(kind.startswith("alert.") for kind in others), others  # a volume alert is the only other entry
    assert head - baseline == 2 * len(disclosed) + len(others)

    # 7. the per-minute quota is counted in the shared database: it holds across the four processes, exceeded at most
    # by the requests in flight when it was reached (one per client)
    verified = sum(1 for r in responses if r["kind"] == "verify" and r["status"] == 200)
    verifies = sum(1 for r in responses if r["kind"] == "verify")
    assert 1 <= verified <= FINANCE_PER_MINUTE + CLIENTS - 1, (verified, verifies)
    if verifies >= FINANCE_PER_MINUTE + CLIENTS:
        assert verified < verifies

    print(
        f"log: {baseline} entries before the load, {head} after (+{head - baseline}: {len(disclosed)} disclosures, "
        f"{len(others)} other); {report.checkpoints} checkpoints; verified in {report.seconds:.2f} s; "
        f"finance verifications {verified} of {verifies} under a quota of {FINANCE_PER_MINUTE}/min"
    )


if __name__ == "__main__":
    sys.exit(load_main(sys.argv[1:]))
