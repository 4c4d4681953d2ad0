"""Measurement 6: log appends under concurrency, `gateway log verify` time, proof sizes vs log size."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from .common import median


def _start(i: int) -> Any:
    from gateway.audit.log import DisclosureStart

    return DisclosureStart(
        f"bench{i:09d}",
        "bench",
        "pku-education-lab",
        "research-continuity",
        1,
        "sha256:00",
        "li.ming@registry.example",
        "bench",
        "research",
        "extract",
        {"dataset": "children", "fields": [{"name": "child_id", "op": "tokenize"}], "filters": [], "limit": None},
    )


def appends(url: str, *, threads: int = 32, per_thread: int = 200) -> dict[str, Any]:
    from gateway.audit.log import SqlDisclosureLog
    from gateway.db import create_gateway_engine, init_schema

    path = url.removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):  # a fresh database each run: the append ids repeat
        Path(path + suffix).unlink(missing_ok=True)
    engine = create_gateway_engine(url)
    init_schema(engine)
    log = SqlDisclosureLog(engine, checkpoint_every=10_000)
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        mine = []
        for i in range(per_thread):
            t = time.perf_counter()
            log.start(_start(n * per_thread + i + 10**8))
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    log.close()
    engine.dispose()
    latencies.sort()
    return {
        "appends": threads * per_thread,
        "threads": threads,
        "appends_per_s": threads * per_thread / elapsed,
        "p50_ms": median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def fill(url: str, entries: int) -> None:
    """Append ``entries`` through the writer's own group-commit path in groups of 10,000 (the bench does not wait on
    one commit per entry: it builds a large log quickly with exactly the production code that writes it)."""
    from gateway.audit.signer import LogSigner
    from gateway.audit.sql_log import SqlDisclosureLog, _Pending
    from gateway.db import create_gateway_engine, init_schema
    from keys import SecretBytes, SigningKey

    engine = create_gateway_engine(url)
    init_schema(engine)
    log = SqlDisclosureLog(
        engine, signer=LogSigner(SigningKey.from_seed(SecretBytes(b"\x05" * 32))), checkpoint_every=100_000
    )
    for first in range(0, entries, 10_000):
        group = [_Pending(_start(i)) for i in range(first, min(entries, first + 10_000))]
        log._commit_group(group)
        if any(p.error for p in group):
            raise RuntimeError("filling the benchmark log failed")
    log.checkpoint()
    log.close()
    engine.dispose()


def verify_and_proofs(directory: Path, entries: int) -> dict[str, Any]:
    from gateway.audit.reader import LogReader
    from gateway.audit.signer import LogVerifier
    from gateway.audit.verify import verify_log
    from gateway.db import create_gateway_engine
    from keys import SecretBytes, SigningKey

    url = f"sqlite:///{directory / 'log-bench.db'}"
    if not (directory / "log-bench.db").exists():
        fill(url, entries)
    engine = create_gateway_engine(url)
    accounting = _accounting(engine)
    verifier = LogVerifier(SigningKey.from_seed(SecretBytes(b"\x05" * 32)).public_key)
    report = verify_log(engine, verifier)
    reader = LogReader(engine)
    size = reader.size()
    proofs = {}
    for n in (1_000, 10_000, 100_000, size):
        if n <= size:
            start = time.perf_counter()
            proof = reader.inclusion_proof(n // 2, n)
            proofs[n] = {"hashes": len(proof), "ms": (time.perf_counter() - start) * 1000}
    engine.dispose()
    return {
        "entries": report.entries,
        "ok": report.ok,
        "verify_s": report.seconds,
        "proofs": proofs,
        "accounting": accounting,
    }


def _accounting(engine: Any) -> dict[str, Any]:
    """Accounting of disclosures for one subject in a log of n disclosures: one subject-index row per disclosure
    (random subjects), plus a known subject in 20 of them; the lookup is the API's query (index + join)."""
    import os
    import statistics

    import sqlalchemy as sa

    from gateway.audit.reader import LogReader

    with engine.begin() as conn:
        seqs = [r[0] for r in conn.execute(sa.text("SELECT start_seq FROM disclosures ORDER BY start_seq"))]
        indexed = conn.execute(sa.text("SELECT count(*) FROM subject_index")).scalar_one()
        known = b"\x01" * 16
        if indexed < len(seqs):
            rows = [(os.urandom(16), seq) for seq in seqs]
            rows += [(known, seq) for seq in seqs[:: max(1, len(seqs) // 20)][:20]]
            conn.exec_driver_sql(
                "INSERT OR IGNORE INTO subject_index (subject_hash, disclosure_seq) VALUES (?, ?)", rows
            )
    reader = LogReader(engine)
    times = []
    found = 0
    for _ in range(20):
        start = time.perf_counter()
        found = len(reader.subject_disclosures(known))
        times.append((time.perf_counter() - start) * 1000)
    return {
        "disclosures": len(seqs),
        "subject_rows": len(seqs) + found,
        "found": found,
        "median_ms": statistics.median(times),
        "max_ms": max(times),
    }
