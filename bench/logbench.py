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


#: the subject every 1/20 of the benchmark log's disclosures also released (the accounting lookup finds it 20 times)
KNOWN_SUBJECT = b"\x01" * 16
#: one differentially private query (a budget.spent entry) per this many disclosures
_BUDGET_EVERY = 100


def fill_deployment(url: str, entries: int) -> None:
    """Append ``entries`` through the writer's own group-commit path, like :func:`fill`, but what a deployment's
    log holds, so that `gateway log verify` runs every projection check on it: disclosures as started + finished
    pairs, each releasing one subject (every 1/20th also ``KNOWN_SUBJECT``) with its subject-index rows and the
    finished entry's subject-set commitment; a ``budget.spent`` event every 100 disclosures, with the matching
    ``privacy_budgets`` row."""
    import hashlib

    import sqlalchemy as sa

    from gateway.audit.entries import LogEvent, make_finish
    from gateway.audit.signer import LogSigner
    from gateway.audit.sql_log import SqlDisclosureLog, _Pending
    from gateway.audit.subjects import release_order
    from gateway.db import create_gateway_engine, init_schema
    from keys import SecretBytes, SigningKey
    from tlog import RootAccumulator

    engine = create_gateway_engine(url)
    init_schema(engine)
    log = SqlDisclosureLog(
        engine, signer=LogSigner(SigningKey.from_seed(SecretBytes(b"\x05" * 32))), checkpoint_every=100_000
    )
    order = release_order("research-continuity")
    every = max(1, (entries // 2) // 20)
    spent = 0
    written = 0
    disclosure = 0
    while written < entries:
        group: list[_Pending] = []
        finishes: list[_Pending] = []
        events: list[_Pending] = []
        while written + len(group) + len(finishes) + len(events) + 2 <= entries and len(group) < 4_000:
            i = disclosure
            subjects = [hashlib.sha256(i.to_bytes(8, "big")).digest()[:16]]
            if i % every == 0 and i // every < 20:
                subjects.append(KNOWN_SUBJECT)
            subjects.sort(key=order)
            acc = RootAccumulator()
            acc.extend(subjects)
            commitment = {"count": acc.size, "root": acc.root().hex()}
            group.append(_Pending(_start(i), tuple(subjects)))
            finishes.append(
                _Pending(make_finish(f"bench{i:09d}", "completed", 1, 100, "ab" * 32, None, None, commitment))
            )
            if i % _BUDGET_EVERY == 0 and written + len(group) + len(finishes) + len(events) < entries:
                events.append(
                    _Pending(
                        LogEvent.of({"type": "budget.spent", "agreement": "dp-stats", "units": 1_000, "queries": 0})
                    )
                )
                spent += 1
            disclosure += 1
        if not group:  # an odd remainder: one more event
            events.append(_Pending(LogEvent.of({"type": "bench.padding"})))
        batch = group + finishes + events
        log._commit_group(batch)
        if any(p.error for p in batch):
            raise RuntimeError("filling the benchmark log failed")
        written += len(batch)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO privacy_budgets (agreement_id, spent_units, queries, updated_at) VALUES (:a, :s, :q, :t)"
            ),
            {"a": "dp-stats", "s": spent * 1_000, "q": spent, "t": "2026-01-01 00:00:00"},
        )
    log.checkpoint()
    log.close()
    engine.dispose()


def verify_projections(directory: Path, entries: int = 100_000) -> dict[str, Any]:
    """`gateway log verify` with every projection check on a log of ``entries`` (pairs, subject index, budget
    events), in a fresh process so that its peak memory is its own; figures extrapolated linearly to 1,000,000."""
    import json
    import subprocess
    import sys

    path = directory / f"log-projections-{entries}.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        fill_deployment(url, entries)
    code = (
        "import json, resource, sys, time\n"
        "from gateway.audit.signer import LogVerifier\n"
        "from gateway.audit.verify import verify_log\n"
        "from gateway.db import create_gateway_engine\n"
        "from keys import SecretBytes, SigningKey\n"
        "def hwm():\n"
        "    text = open('/proc/self/status').read()\n"
        "    return int(text.split('VmHWM:')[1].split()[0]) / 1024\n"
        "engine = create_gateway_engine(sys.argv[1])\n"
        "verifier = LogVerifier(SigningKey.from_seed(SecretBytes(b'\\x05' * 32)).public_key)\n"
        "open('/proc/self/clear_refs', 'w').write('5')  # reset the peak: what the imports took is not verify's\n"
        "before, cpu = hwm(), time.process_time()\n"
        "report = verify_log(engine, verifier)\n"
        "print(json.dumps({'ok': report.ok, 'problems': report.problems[:3], 'entries': report.entries,"
        " 'seconds': report.seconds, 'cpu_s': time.process_time() - cpu, 'rss_start_mb': before,"
        " 'rss_peak_mb': hwm()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["per_million_s"] = result["seconds"] * 1_000_000 / max(1, result["entries"])
    result["per_million_cpu_s"] = result["cpu_s"] * 1_000_000 / max(1, result["entries"])
    return result


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
