"""Someone with database access edits what compliance reads (not the signed entries): `gateway log verify` names it.

Measured before this check: subject-index rows deleted and ``disclosures.principal``/``rows`` edited on a copy of the
database, verify said "log OK", and the accounting of disclosures for one child fell from 12 to 3. Each attack below
edits one derived table and asserts that verify fails, naming the disclosure.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.log import DisclosureStart, MemoryDisclosureLog
from gateway.audit.session import DisclosureSession, FinishStatus, SessionMisuseError
from gateway.audit.signer import LogVerifier
from gateway.audit.subjects import release_order
from gateway.audit.verify import VerifyReport, verify_log
from tests.gateway.harness import Env
from tlog import RootAccumulator, leaf_hash, root_from_leaves

pytestmark = pytest.mark.anyio


async def _activity(env: Env, registry_path: Path) -> tuple[str, str]:
    """A research extract and a single-record lookup; returns (extract disclosure id, record disclosure id)."""
    conn = sqlite3.connect(registry_path)
    (student,) = conn.execute("SELECT student_number FROM children WHERE status = 'enrolled' LIMIT 1").fetchone()
    conn.close()
    async with env.client() as client:
        extract = await client.post(
            "/v1/agreements/research-continuity/extract", headers=env.auth("research"), json={"limit": 40}
        )
        record = await client.post(
            "/v1/agreements/school-transfer/extract",
            headers=env.auth("school"),
            json={"filters": {"student_number": {"eq": student}}},
        )
    assert extract.status_code == record.status_code == 200, (extract.text, record.text)
    env.flush()
    return extract.headers["x-disclosure-id"], record.headers["x-disclosure-id"]


def _verify(env: Env) -> VerifyReport:
    signer = env.services.signer
    assert signer is not None
    return verify_log(env.engine, LogVerifier(signer.public_key))


def _start_seq(env: Env, disclosure_id: str) -> int:
    with env.engine.connect() as conn:
        return int(
            conn.execute(sa.text("SELECT start_seq FROM disclosures WHERE id = :i"), {"i": disclosure_id}).scalar_one()
        )


async def test_untouched_tables_verify(env: Env, registry_path: Path) -> None:
    extract_id, _ = await _activity(env, registry_path)
    report = _verify(env)
    assert report.ok, report.problems
    finished = [json.loads(b) for b in env.log_bodies() if '"disclosure.finished"' in b]
    commitment = next(e["subjects"] for e in finished if e["disclosure_id"] == extract_id)
    assert commitment["count"] == 40 and len(commitment["root"]) == 64


async def test_deleting_subject_index_rows_is_named(env: Env, registry_path: Path) -> None:
    extract_id, _ = await _activity(env, registry_path)
    seq = _start_seq(env, extract_id)
    with env.engine.begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM subject_index WHERE disclosure_seq = :s AND subject_hash IN "
                "(SELECT subject_hash FROM subject_index WHERE disclosure_seq = :s LIMIT 5)"
            ),
            {"s": seq},
        )
    report = _verify(env)
    assert not report.ok
    assert any(f"log index {seq}" in p and "35 subjects" in p and "40" in p for p in report.problems), report.problems


async def test_deleting_a_whole_disclosures_index_is_named(env: Env, registry_path: Path) -> None:
    _, record_id = await _activity(env, registry_path)
    seq = _start_seq(env, record_id)
    with env.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM subject_index WHERE disclosure_seq = :s"), {"s": seq})
    report = _verify(env)
    assert any(f"log index {seq}" in p and "empty" in p for p in report.problems), report.problems


async def test_adding_a_subject_to_a_disclosure_is_named(env: Env, registry_path: Path) -> None:
    extract_id, record_id = await _activity(env, registry_path)
    seq = _start_seq(env, record_id)
    with env.engine.begin() as conn:  # move one child of the extract into the school's disclosure
        conn.execute(
            sa.text(
                "INSERT INTO subject_index (subject_hash, disclosure_seq) SELECT subject_hash, :r FROM subject_index "
                "WHERE disclosure_seq = :e AND subject_hash NOT IN "
                "(SELECT subject_hash FROM subject_index WHERE disclosure_seq = :r) LIMIT 1"
            ),
            {"r": seq, "e": _start_seq(env, extract_id)},
        )
    report = _verify(env)
    assert any(f"log index {seq}" in p and "2 subjects" in p for p in report.problems), report.problems


@pytest.mark.parametrize(
    ("column", "value"),
    [("principal", "'finance-bureau'"), ("rows", "rows + 1"), ("purpose", "'audit'"), ("status", "'failed'")],
)
async def test_editing_a_disclosures_row_is_named(env: Env, registry_path: Path, column: str, value: str) -> None:
    extract_id, _ = await _activity(env, registry_path)
    with env.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE disclosures SET {column} = {value} WHERE id = :i"), {"i": extract_id})  # noqa: S608
    report = _verify(env)
    assert any(extract_id in p and column in p and "edited" in p for p in report.problems), report.problems


async def test_deleting_a_disclosures_row_is_named(env: Env, registry_path: Path) -> None:
    _, record_id = await _activity(env, registry_path)
    with env.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM disclosures WHERE id = :i"), {"i": record_id})
    report = _verify(env)
    assert any(record_id in p and "missing" in p for p in report.problems), report.problems


async def test_a_row_without_an_entry_is_named(env: Env, registry_path: Path) -> None:
    extract_id, _ = await _activity(env, registry_path)
    with env.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO disclosures (id, request_id, principal, agreement_id, agreement_version, agreement_digest,"
                " approved_by, legal_basis, purpose, operation, status, started_at, rows, bytes, start_seq, plan) "
                "SELECT 'forged0000', request_id, principal, agreement_id, agreement_version, agreement_digest, "
                "approved_by, legal_basis, purpose, operation, status, started_at, rows, bytes, 999999, plan "
                "FROM disclosures WHERE id = :i"
            ),
            {"i": extract_id},
        )
    report = _verify(env)
    assert any("forged0000" in p and "no signed entry" in p for p in report.problems), report.problems


async def test_a_finished_disclosure_made_to_look_unfinished_is_named(env: Env, registry_path: Path) -> None:
    """The row loses its final entry (as after a crash): the finished entry no row records is named."""
    extract_id, _ = await _activity(env, registry_path)
    with env.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE disclosures SET finish_seq = NULL, status = 'started', rows = 0, bytes = 0, sha256 = NULL "
                "WHERE id = :i"
            ),
            {"i": extract_id},
        )
    report = _verify(env)
    assert any(extract_id in p and "does not record this signed final entry" in p for p in report.problems), (
        report.problems
    )


async def test_hiding_an_entry_by_its_kind_column_is_named(env: Env, registry_path: Path) -> None:
    """The kind column is not hashed: relabelling a started entry would hide it from the row checks."""
    extract_id, _ = await _activity(env, registry_path)
    seq = _start_seq(env, extract_id)
    with env.engine.begin() as conn:
        conn.execute(sa.text("UPDATE log_entries SET kind = 'alert.volume' WHERE seq = :s"), {"s": seq})
        conn.execute(sa.text("DELETE FROM disclosures WHERE id = :i"), {"i": extract_id})
    report = _verify(env)
    assert not report.ok
    assert any(f"entry {seq}" in p and "kind column" in p for p in report.problems), report.problems


# -- the commitment itself ---------------------------------------------------------------------------------------------


@given(st.lists(st.binary(min_size=16, max_size=16), max_size=70), st.integers(1, 9))
def test_the_accumulator_is_the_rfc9162_root(leaves: list[bytes], step: int) -> None:
    acc = RootAccumulator()
    for start in range(0, len(leaves), step):
        acc.extend(leaves[start : start + step])
    assert acc.size == len(leaves)
    assert acc.root() == root_from_leaves([leaf_hash(x) for x in leaves])


def _session(log: MemoryDisclosureLog) -> DisclosureSession:
    start = DisclosureStart("d1", "r", "lab", "agr", 1, "sha256:x", "ap", "lb", "research", "extract", {})
    return DisclosureSession(log, start)


def test_the_final_entry_commits_to_the_indexed_subjects_in_release_order() -> None:
    log = MemoryDisclosureLog()
    session = _session(log)
    hashes = [bytes([i]) * 16 for i in range(30)]
    ordered = sorted(hashes, key=release_order("agr"))
    session.start_sync()
    session.index(list(reversed(ordered[:10])))  # a buffered disclosure's subjects, in any order: sorted here
    session.index(ordered[10:], ordered=True)  # an extract's groups come in release order
    session.finish(FinishStatus.COMPLETED, rows=30)
    want = root_from_leaves([leaf_hash(h) for h in sorted(hashes, key=release_order("agr"))])
    assert log.entries[-1]["subjects"] == {"count": 30, "root": want.hex()}


def test_subjects_out_of_release_order_are_refused() -> None:
    session = _session(MemoryDisclosureLog())
    session.start_sync()
    ordered = sorted((bytes([i]) * 16 for i in range(10)), key=release_order("agr"))
    session.index(ordered[5:], ordered=True)
    with pytest.raises(SessionMisuseError):
        session.index(ordered[:5], ordered=True)  # would make the commitment disagree with the index
