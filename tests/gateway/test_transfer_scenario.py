"""Scenario: a family moves, the child changes region, the receiving school fetches that one child's record.

Registration follows the child: the receiving kindergarten asks for the record under ``school-transfer``; afterwards
an accounting of disclosures for that child (the subject index joined to the disclosures) shows exactly that
release: when, to whom, for which purpose, under which approval.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.audit.reader import LogReader
from tests.gateway.harness import Env

pytestmark = pytest.mark.anyio


def moved_child(registry_path: Path) -> dict[str, Any]:
    """A child whose last enrollment ended with a transfer to the region where the child is now enrolled."""
    conn = sqlite3.connect(registry_path)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute(
            """
            SELECT c.child_id, c.residence_code, c.kindergarten_id, e.region_code AS from_region,
                   e.transfer_to_region AS to_region, now.kindergarten_id AS new_kindergarten
            FROM children AS c
            JOIN enrollments AS e ON e.child_id = c.child_id AND e.end_reason = 'transfer'
            JOIN enrollments AS now ON now.child_id = c.child_id AND now.end_date IS NULL
            WHERE c.status = 'enrolled' AND e.transfer_to_region = c.residence_code
              AND e.region_code != e.transfer_to_region AND now.region_code = c.residence_code
            ORDER BY c.child_id
            LIMIT 1
            """
        ).fetchone()
    finally:
        conn.close()
    assert row is not None, "the demo registry has no child that moved region"
    return dict(row)


async def test_receiving_school_fetches_a_moved_child_and_the_log_accounts_for_it(
    env: Env, registry_path: Path
) -> None:
    child = moved_child(registry_path)
    async with env.client() as client:
        # Another lookup first, for a child that does not exist: it must not be attributed to this child.
        miss = await client.get("/v1/agreements/school-transfer/records/C99999998", headers=env.auth("school"))
        response = await client.get(
            f"/v1/agreements/school-transfer/records/{child['child_id']}", headers=env.auth("school")
        )
    assert miss.status_code == 404
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["child_id"] == child["child_id"]
    assert record["residence_code"] == child["to_region"] != child["from_region"]
    assert record["kindergarten_id"] == child["new_kindergarten"]

    # Accounting for this child, as the compliance API computes it: subject index (keyed hash) → disclosure.
    key = env.services.keyring.derive("log:subject-index", "subjects").reveal()
    subject = hmac.new(key, child["child_id"].encode(), hashlib.sha256).digest()[:16]
    miss_hash = hmac.new(key, b"C99999998", hashlib.sha256).digest()[:16]
    found = [row._asdict() for row in LogReader(env.engine, flush=env.flush).subject_disclosures(subject)]
    assert LogReader(env.engine).subject_disclosures(miss_hash) == []  # the miss released nothing
    with env.engine.connect() as conn:
        stored_hashes = [bytes(r[0]) for r in conn.execute(sa.text("SELECT subject_hash FROM subject_index"))]
    assert len(found) == 1
    entry = dict(found[0])
    assert entry["id"] == response.headers["x-disclosure-id"]
    assert (entry["principal"], entry["operation"], entry["status"], entry["rows"]) == (
        "receiving-school",
        "record",
        "completed",
        1,
    )
    assert entry["purpose"] == "enrollment_transfer" and entry["agreement_id"] == "school-transfer"
    assert entry["approved_by"] == "wang.fang@registry.example" and "art. 15" in entry["legal_basis"]
    assert entry["finished_at"] is not None and entry["sha256"] == hashlib.sha256(response.content).hexdigest()
    # The index holds keyed hashes only (of the ids asked for): the id itself is nowhere in the log.
    assert sorted(stored_hashes) == sorted([subject, miss_hash])
    assert all(child["child_id"] not in body for body in env.log_bodies())
