"""The disclosure log's group commit: all or nothing, and (on PostgreSQL) in a bounded number of round trips.

The round-trip count is read from libpq's protocol trace of the writer's connection (every frontend burst answered
by the backend is one round trip): a count, not a timing, so it is the same on a loaded machine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.audit.log import DisclosureStart, SqlDisclosureLog
from gateway.db import create_gateway_engine, init_schema
from gateway.errors import AuditUnavailableError
from tests.gateway.harness import sqlite_url
from tlog import MemoryTree, leaf_hash


def _start(name: str) -> DisclosureStart:
    return DisclosureStart(
        name,
        "req",
        "pku-education-lab",
        "research-continuity",
        1,
        "sha256:x",
        "li",
        "basis",
        "research",
        "record",
        {"fields": [], "filters": []},
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else sqlite_url(tmp_path / "g.db")
    eng = create_gateway_engine(url)
    init_schema(eng)
    yield eng
    eng.dispose()


def _state(engine: sa.Engine) -> tuple[int, list[int], int, int]:
    with engine.connect() as conn:
        head = conn.execute(sa.text("SELECT size FROM log_head")).scalar_one()
        seqs = [r[0] for r in conn.execute(sa.text("SELECT seq FROM log_entries ORDER BY seq"))]
        disclosures = conn.execute(sa.text("SELECT count(*) FROM disclosures")).scalar_one()
        subjects = conn.execute(sa.text("SELECT count(*) FROM subject_index")).scalar_one()
    return int(head), seqs, int(disclosures), int(subjects)


def _tree_matches(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        bodies = [r[0] for r in conn.execute(sa.text("SELECT body FROM log_entries ORDER BY seq"))]
        stored = {(r[0], r[1]): r[2] for r in conn.execute(sa.text("SELECT level, idx, hash FROM log_nodes"))}
    assert [json.loads(b)["index"] for b in bodies] == list(range(len(bodies)))
    tree = MemoryTree([leaf_hash(b.encode()) for b in bodies])
    for (level, idx), node in stored.items():
        assert tree.get(level, idx).hex() == node


def test_a_group_whose_last_statement_fails_commits_nothing(engine: sa.Engine) -> None:
    # Attack on atomicity: the entry, its tree nodes and subject rows are written before the disclosure row; a
    # duplicate disclosure id makes that row fail. With the statements pipelined, the earlier ones must not stay.
    log = SqlDisclosureLog(engine)
    base = _state(engine)  # the PostgreSQL database is shared by the tests of a run
    try:
        assert log.start(_start("d-1"), [b"\x01" * 32]) == base[0]
        before = _state(engine)
        with pytest.raises(AuditUnavailableError):
            log.start(_start("d-1"), [b"\x02" * 32])
        assert _state(engine) == before  # no entry, no head move, no subject row
        # the writer recovers: the next entry takes the next index, no gap where the failed one was
        assert log.start(_start("d-2"), [b"\x03" * 32]) == base[0] + 1
        log.finish("d-2", status="completed", rows=1, nbytes=10, sha256=None)
        head, seqs, disclosures, subjects = _state(engine)
        assert (head, seqs) == (base[0] + 3, list(range(base[0] + 3)))
        assert (disclosures, subjects) == (base[2] + 2, base[3] + 2)
        _tree_matches(engine)
    finally:
        log.close()


def test_concurrent_appends_in_groups_stay_contiguous(engine: sa.Engine) -> None:
    log = SqlDisclosureLog(engine)
    base = _state(engine)
    seen: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(15):
            seq = log.start(_start(f"t{n}-{i}"), [bytes([n, i]) * 16])
            log.finish(f"t{n}-{i}", status="completed", rows=i, nbytes=i, sha256=None, wait=i % 2 == 0)
            with lock:
                seen.append(seq)

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.flush()
    finally:
        log.close()
    head, seqs, disclosures, subjects = _state(engine)
    assert head == base[0] + 240 and seqs == list(range(base[0] + 240))
    assert (disclosures, subjects) == (base[2] + 120, base[3] + 120)
    assert len(set(seen)) == 120
    _tree_matches(engine)


def _round_trips(trace: str) -> int:
    """Frontend bursts answered by the backend: each F line directly followed (eventually) by a B line."""
    trips, sending = 0, False
    for line in trace.splitlines():
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        if fields[1] == "F":
            sending = True
        elif fields[1] == "B" and sending:
            trips += 1
            sending = False
    return trips


@pytest.mark.postgres
def test_postgres_group_commit_takes_three_round_trips(postgres_url: str, tmp_path: Path) -> None:
    engine = create_gateway_engine(postgres_url)
    init_schema(engine)
    log = SqlDisclosureLog(engine)
    base = _state(engine)[0]
    trace_path = tmp_path / "libpq.trace"
    try:
        log.start(_start("warm"))  # the writer thread and its pooled connection exist
        traced_connections: list[Any] = []
        with trace_path.open("w") as trace:

            def traced(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
                if not any(c is dbapi_connection for c in traced_connections):
                    dbapi_connection.pgconn.trace(trace.fileno())
                    traced_connections.append(dbapi_connection)

            sa.event.listen(engine, "checkout", traced)
            groups = 5
            for i in range(groups):  # each start waits for its own group commit
                log.start(_start(f"g{i}"), [bytes([i]) * 32])
            sa.event.remove(engine, "checkout", traced)
            for connection in traced_connections:
                connection.pgconn.untrace()  # flushes libpq's buffer into the file
        text = trace_path.read_text()
        commits = [line for line in text.splitlines() if "\tF\t" in line and '"COMMIT"' in line]
        assert len(commits) == groups  # what was traced is these groups' transactions
        # pool ping; BEGIN + locking read; inserts + head + COMMIT (it was ten: one per statement)
        assert _round_trips(text) <= 3 * groups
    finally:
        log.close()
    _tree_matches(engine)
    assert _state(engine)[0] == base + 6
    engine.dispose()
